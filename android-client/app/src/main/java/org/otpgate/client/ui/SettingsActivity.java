package org.otpgate.client.ui;

import android.app.Activity;
import android.os.Bundle;
import android.widget.CheckBox;
import android.widget.EditText;
import android.widget.Toast;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.otpgate.client.Gateway;
import org.otpgate.client.R;
import org.otpgate.client.service.GatewayService;
import org.otpgate.client.store.Prefs;
import org.otpgate.core.PhoneEngine;

/** The send rate, the heartbeat, the wake lock; and forgetting the provisioning. Prefs are read and written off the main thread. */
public final class SettingsActivity extends Activity {
    private final ExecutorService background = Executors.newSingleThreadExecutor();
    private Prefs prefs;
    private EditText rate;
    private EditText heartbeat;
    private CheckBox keepAwake;
    private int currentRate;
    private int currentHeartbeat;

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        setContentView(R.layout.activity_settings);
        EdgeToEdge.apply(this);
        prefs = new Prefs(this);
        rate = findViewById(R.id.rate_input);
        heartbeat = findViewById(R.id.heartbeat_input);
        keepAwake = findViewById(R.id.keep_awake);
        findViewById(R.id.button_save).setOnClickListener(v -> save());
        findViewById(R.id.button_forget).setOnClickListener(v -> forget());
        background.execute(() -> {
            int perMinute = prefs.maxPerMinute();
            int seconds = prefs.heartbeatSeconds();
            boolean awake = prefs.keepAwake();
            runOnUiThread(() -> {
                currentRate = perMinute;
                currentHeartbeat = seconds;
                rate.setText(String.valueOf(perMinute));
                heartbeat.setText(String.valueOf(seconds));
                keepAwake.setChecked(awake);
            });
        });
    }

    @Override
    protected void onDestroy() {
        background.shutdown();
        super.onDestroy();
    }

    private void save() {
        // Never above Android's own 30 a minute: past it Android stops and asks a user who is not there.
        int perMinute = PhoneEngine.clampRate(number(rate, currentRate));
        int seconds = Math.max(30, Math.min(600, number(heartbeat, currentHeartbeat)));
        boolean awake = keepAwake.isChecked();
        background.execute(() -> {
            prefs.saveTuning(perMinute, seconds, awake);
            Gateway.get(this).restart();
        });
        Toast.makeText(this, "Saved: " + perMinute + " SMS a minute, heartbeat every " + seconds + " s", Toast.LENGTH_SHORT).show();
        finish();
    }

    /** The handled job ids stay: a re-provisioned phone must still never send an old id again. */
    private void forget() {
        GatewayService.stop(this);
        background.execute(() -> {
            prefs.forgetProvisioning();
            Gateway.get(this).stop();
        });
        Toast.makeText(this, "Provisioning forgotten", Toast.LENGTH_SHORT).show();
        finish();
    }

    private static int number(EditText field, int fallback) {
        try {
            return Integer.parseInt(field.getText().toString().trim());
        } catch (NumberFormatException e) {
            return fallback;
        }
    }
}
