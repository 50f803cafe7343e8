package org.otpgate.client.ui;

import android.Manifest;
import android.app.Activity;
import android.content.ActivityNotFoundException;
import android.content.Context;
import android.content.Intent;
import android.content.pm.PackageManager;
import android.net.Uri;
import android.os.Build;
import android.os.Bundle;
import android.os.PowerManager;
import android.provider.Settings;
import android.util.Log;
import android.view.View;
import android.widget.Button;
import android.widget.LinearLayout;
import android.widget.TextView;
import android.widget.Toast;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.otpgate.client.R;
import org.otpgate.core.PermissionAdvice;

/**
 * The permission flow: each permission with why it is needed and a button to
 * grant it, then the battery-optimisation exemption. What each row offers is
 * core's PermissionAdvice, which knows Android 15's restricted settings: there
 * the SMS request of a sideloaded app is refused without a dialog, and the row
 * leads to App info with the steps to allow it.
 */
public final class PermissionsActivity extends Activity {
    private static final int REQUEST = 1;
    private LinearLayout list;
    private final List<View> rows = new ArrayList<>();
    /** Permissions whose request came back denied while this screen was open. */
    private final Set<String> refused = new HashSet<>();

    /** A runtime permission and the reason shown beside it. */
    private static final class Need {
        final String permission;
        final int reason;
        /** Android 15 blocks it for sideloaded apps until "Allow restricted settings". */
        final boolean restrictable;

        Need(String permission, int reason, boolean restrictable) {
            this.permission = permission;
            this.reason = reason;
            this.restrictable = restrictable;
        }
    }

    private static List<Need> needs() {
        List<Need> out = new ArrayList<>();
        out.add(new Need(Manifest.permission.SEND_SMS, R.string.perm_sms, true));
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU) {
            out.add(new Need(Manifest.permission.POST_NOTIFICATIONS, R.string.perm_notifications, false));
        }
        out.add(new Need(Manifest.permission.READ_PHONE_STATE, R.string.perm_phone_state, false));
        return out;
    }

    static boolean allGranted(Context context) {
        for (Need need : needs()) {
            if (context.checkSelfPermission(need.permission) != PackageManager.PERMISSION_GRANTED) return false;
        }
        return ignoresBatteryOptimisation(context);
    }

    private static boolean ignoresBatteryOptimisation(Context context) {
        PowerManager power = context.getSystemService(PowerManager.class);
        return power != null && power.isIgnoringBatteryOptimizations(context.getPackageName());
    }

    /** How Android says the app was installed (API 33+): restricted settings apply to installs from a file. */
    private int packageSource() {
        if (Build.VERSION.SDK_INT < Build.VERSION_CODES.TIRAMISU) return PermissionAdvice.SOURCE_UNKNOWN;
        try {
            return getPackageManager().getInstallSourceInfo(getPackageName()).getPackageSource();
        } catch (PackageManager.NameNotFoundException | RuntimeException e) {
            return PermissionAdvice.SOURCE_UNKNOWN;
        }
    }

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        setContentView(R.layout.activity_permissions);
        EdgeToEdge.apply(this);
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
        for (int i = 0; i < permissions.length && i < results.length; i++) {
            if (results[i] != PackageManager.PERMISSION_GRANTED) refused.add(permissions[i]);
        }
        render();
    }

    private void render() {
        for (View row : rows) list.removeView(row);
        rows.clear();
        int source = packageSource();
        for (Need need : needs()) {
            boolean granted = checkSelfPermission(need.permission) == PackageManager.PERMISSION_GRANTED;
            PermissionAdvice.Advice advice = PermissionAdvice.of(Build.VERSION.SDK_INT, need.restrictable, source, granted,
                    refused.contains(need.permission), shouldShowRequestPermissionRationale(need.permission));
            addRow(need, advice);
        }
        boolean exempt = ignoresBatteryOptimisation(this);
        addRow(getString(R.string.perm_battery) + " (" + getString(exempt ? R.string.granted : R.string.not_granted) + ")",
                exempt, R.string.button_grant, this::askBatteryExemption);
    }

    private void addRow(Need need, PermissionAdvice.Advice advice) {
        String text = getString(need.reason);
        switch (advice) {
            case GRANTED:
                addRow(text + " (" + getString(R.string.granted) + ")", true, R.string.button_grant, null);
                return;
            case ASK:
                addRow(text + " (" + getString(R.string.not_granted) + ")", false, R.string.button_grant, () -> ask(need));
                return;
            case ASK_MAY_BE_RESTRICTED:
                addRow(text + " (" + getString(R.string.not_granted) + ")\n" + getString(R.string.restricted_maybe), false,
                        R.string.button_grant, () -> ask(need));
                return;
            case ALLOW_RESTRICTED_IN_APP_INFO:
                addRow(text + " (" + getString(R.string.not_granted) + ")\n" + getString(R.string.restricted_steps), false,
                        R.string.button_app_info, this::openAppInfo);
                return;
            case GRANT_IN_APP_INFO:
            default:
                addRow(text + " (" + getString(R.string.not_granted) + ")\n" + getString(R.string.denied_steps), false,
                        R.string.button_app_info, this::openAppInfo);
        }
    }

    private void addRow(String text, boolean done, int buttonLabel, Runnable action) {
        View row = getLayoutInflater().inflate(R.layout.row_permission, list, false);
        ((TextView) row.findViewById(R.id.permission_text)).setText(text);
        Button button = row.findViewById(R.id.permission_button);
        button.setText(buttonLabel);
        button.setEnabled(!done && action != null);
        if (action != null) button.setOnClickListener(v -> action.run());
        list.addView(row);
        rows.add(row);
    }

    private void ask(Need need) {
        refused.remove(need.permission);
        requestPermissions(new String[] {need.permission}, REQUEST);
    }

    /** App info, where ⋮ → "Allow restricted settings" and Permissions are. */
    private void openAppInfo() {
        if (!open(new Intent(Settings.ACTION_APPLICATION_DETAILS_SETTINGS, Uri.parse("package:" + getPackageName())))) {
            Toast.makeText(this, getString(R.string.no_settings_screen), Toast.LENGTH_LONG).show();
        }
    }

    /**
     * An SMS gateway is exactly the kind of app the exemption is for: it must
     * keep a connection open to receive work. Some vendor builds have no screen
     * for the direct request (ActivityNotFoundException) or refuse it
     * (SecurityException): then the list of all apps' optimisation, then App
     * info, then a message. Vendor battery savers are separate (README).
     */
    private void askBatteryExemption() {
        Intent direct = new Intent(Settings.ACTION_REQUEST_IGNORE_BATTERY_OPTIMIZATIONS, Uri.parse("package:" + getPackageName()));
        Intent all = new Intent(Settings.ACTION_IGNORE_BATTERY_OPTIMIZATION_SETTINGS);
        if (open(direct) || open(all)) return;
        openAppInfo();
    }

    private boolean open(Intent intent) {
        try {
            startActivity(intent);
            return true;
        } catch (ActivityNotFoundException | SecurityException e) {
            Log.w("otpgate", "no screen for " + intent.getAction(), e);
            return false;
        }
    }
}
