package org.otpgate.client.ui;

import android.content.Intent;
import android.os.Bundle;
import android.os.Handler;
import android.os.Looper;
import android.widget.Button;
import android.widget.TextView;
import androidx.appcompat.app.AppCompatActivity;
import org.otpgate.client.Gateway;
import org.otpgate.client.R;
import org.otpgate.client.service.GatewayService;
import org.otpgate.client.store.Prefs;

/** The status screen: connection, queue, sent today, last error; and the way to the other screens. */
public final class MainActivity extends AppCompatActivity {
    private static final long REFRESH_MS = 1_000;

    private final Handler main = new Handler(Looper.getMainLooper());
    private final Runnable refresh = new Runnable() {
        @Override
        public void run() {
            render();
            main.postDelayed(this, REFRESH_MS);
        }
    };
    private TextView status;
    private Button startStop;
    private Prefs prefs;

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        setContentView(R.layout.activity_main);
        prefs = new Prefs(this);
        status = findViewById(R.id.status_text);
        startStop = findViewById(R.id.button_start_stop);
        startStop.setOnClickListener(v -> {
            if (prefs.serviceEnabled()) {
                GatewayService.stop(this);
            } else if (prefs.provisioning() == null) {
                startActivity(new Intent(this, ProvisionActivity.class));
            } else {
                GatewayService.start(this);
            }
            render();
        });
        findViewById(R.id.button_provision).setOnClickListener(v -> startActivity(new Intent(this, ProvisionActivity.class)));
        findViewById(R.id.button_permissions).setOnClickListener(v -> startActivity(new Intent(this, PermissionsActivity.class)));
        findViewById(R.id.button_settings).setOnClickListener(v -> startActivity(new Intent(this, SettingsActivity.class)));
        if (!PermissionsActivity.allGranted(this)) startActivity(new Intent(this, PermissionsActivity.class));
    }

    @Override
    protected void onResume() {
        super.onResume();
        main.post(refresh);
    }

    @Override
    protected void onPause() {
        main.removeCallbacks(refresh);
        super.onPause();
    }

    private void render() {
        // describe() reads files on its first call; small, and the screen needs it anyway.
        status.setText(Gateway.get(this).describe());
        startStop.setText(prefs.serviceEnabled() ? R.string.button_stop : R.string.button_start);
    }
}
