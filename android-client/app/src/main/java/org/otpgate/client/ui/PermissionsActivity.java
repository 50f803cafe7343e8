package org.otpgate.client.ui;

import android.Manifest;
import android.annotation.SuppressLint;
import android.content.Context;
import android.content.Intent;
import android.content.pm.PackageManager;
import android.net.Uri;
import android.os.Build;
import android.os.Bundle;
import android.os.PowerManager;
import android.provider.Settings;
import android.view.View;
import android.widget.Button;
import android.widget.LinearLayout;
import android.widget.TextView;
import androidx.appcompat.app.AppCompatActivity;
import java.util.ArrayList;
import java.util.List;
import org.otpgate.client.R;

/**
 * The permission flow: each permission with why it is needed and a button to
 * grant it, then the battery-optimisation exemption.
 */
public final class PermissionsActivity extends AppCompatActivity {
    private static final int REQUEST = 1;
    private LinearLayout list;
    private final List<View> rows = new ArrayList<>();

    /** A runtime permission and the reason shown beside it. */
    private static final class Need {
        final String permission;
        final int reason;
        /** The app works without it (the camera: the URI can be pasted). */
        final boolean optional;

        Need(String permission, int reason, boolean optional) {
            this.permission = permission;
            this.reason = reason;
            this.optional = optional;
        }
    }

    private static List<Need> needs() {
        List<Need> out = new ArrayList<>();
        out.add(new Need(Manifest.permission.SEND_SMS, R.string.perm_sms, false));
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU) {
            out.add(new Need(Manifest.permission.POST_NOTIFICATIONS, R.string.perm_notifications, false));
        }
        out.add(new Need(Manifest.permission.READ_PHONE_STATE, R.string.perm_phone_state, false));
        out.add(new Need(Manifest.permission.CAMERA, R.string.perm_camera, true));
        return out;
    }

    static boolean allGranted(Context context) {
        for (Need need : needs()) {
            if (!need.optional && context.checkSelfPermission(need.permission) != PackageManager.PERMISSION_GRANTED) return false;
        }
        return ignoresBatteryOptimisation(context);
    }

    private static boolean ignoresBatteryOptimisation(Context context) {
        PowerManager power = context.getSystemService(PowerManager.class);
        return power != null && power.isIgnoringBatteryOptimizations(context.getPackageName());
    }

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        setContentView(R.layout.activity_permissions);
        list = findViewById(R.id.permission_list);
    }

    @Override
    protected void onResume() {
        super.onResume();
        render();
    }

    @Override
    public void onRequestPermissionsResult(int requestCode, String[] permissions, int[] results) {
        super.onRequestPermissionsResult(requestCode, permissions, results);
        render();
    }

    private void render() {
        for (View row : rows) list.removeView(row);
        rows.clear();
        for (Need need : needs()) {
            boolean granted = checkSelfPermission(need.permission) == PackageManager.PERMISSION_GRANTED;
            addRow(getString(need.reason), granted, () -> requestPermissions(new String[] {need.permission}, REQUEST));
        }
        addRow(getString(R.string.perm_battery), ignoresBatteryOptimisation(this), this::askBatteryExemption);
    }

    private void addRow(String reason, boolean granted, Runnable grant) {
        View row = getLayoutInflater().inflate(R.layout.row_permission, list, false);
        ((TextView) row.findViewById(R.id.permission_text))
                .setText(reason + " (" + getString(granted ? R.string.granted : R.string.not_granted) + ")");
        Button button = row.findViewById(R.id.permission_button);
        button.setEnabled(!granted);
        button.setOnClickListener(v -> grant.run());
        list.addView(row);
        rows.add(row);
    }

    /**
     * An SMS gateway is exactly the kind of app the exemption is for: it must
     * keep a connection open to receive work. Vendor battery savers are separate
     * and have to be changed by hand (README, dontkillmyapp.com).
     */
    @SuppressLint("BatteryLife")
    private void askBatteryExemption() {
        startActivity(new Intent(Settings.ACTION_REQUEST_IGNORE_BATTERY_OPTIMIZATIONS, Uri.parse("package:" + getPackageName())));
    }
}
