package org.otpgate.client.ui;

import android.app.Activity;
import android.content.Intent;
import android.os.Bundle;
import android.os.Handler;
import android.os.Looper;
import android.widget.Button;
import android.widget.TextView;
import org.otpgate.client.Gateway;
import org.otpgate.client.R;
import org.otpgate.client.service.GatewayService;

/** The status screen: connection, queue, sent today, last error; and the way to the other screens. */
public final class MainActivity extends Activity {
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
    /** From the last status read on the gateway's thread; the button acts on what the screen shows. */
    private boolean enabled;
    private boolean provisioned;

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        setContentView(R.layout.activity_main);
        EdgeToEdge.apply(this);
        status = findViewById(R.id.status_text);
        startStop = findViewById(R.id.button_start_stop);
        startStop.setOnClickListener(v -> {
            if (enabled) {
                GatewayService.stop(this);
            } else if (!provisioned) {
                startActivity(new Intent(this, ProvisionActivity.class));
            } else {
                GatewayService.start(this, "from the Start button");
            }
            render();
        });
        findViewById(R.id.button_provision).setOnClickListener(v -> startActivity(new Intent(this, ProvisionActivity.class)));
        findViewById(R.id.button_permissions).setOnClickListener(v -> startActivity(new Intent(this, PermissionsActivity.class)));
        findViewById(R.id.button_settings).setOnClickListener(v -> startActivity(new Intent(this, SettingsActivity.class)));
        if (savedInstanceState == null && !PermissionsActivity.allGranted(this)) {
            startActivity(new Intent(this, PermissionsActivity.class));
        }
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
        Gateway.get(this).describe(screen -> {
            if (isDestroyed()) return;
            enabled = screen.enabled;
            provisioned = screen.provisioned;
            status.setText(screen.text);
            startStop.setText(enabled ? R.string.button_stop : R.string.button_start);
        });
    }
}
