package org.otpgate.client.ui;

import android.os.Bundle;
import android.widget.CheckBox;
import android.widget.EditText;
import android.widget.Toast;
import androidx.appcompat.app.AppCompatActivity;
import org.otpgate.client.Gateway;
import org.otpgate.client.R;
import org.otpgate.client.service.GatewayService;
import org.otpgate.client.store.Prefs;
import org.otpgate.core.PhoneEngine;

/** The send rate, the heartbeat, the wake lock; and forgetting the provisioning. */
public final class SettingsActivity extends AppCompatActivity {
    private Prefs prefs;
    private EditText rate;
    private EditText heartbeat;
    private CheckBox keepAwake;

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        setContentView(R.layout.activity_settings);
        prefs = new Prefs(this);
        rate = findViewById(R.id.rate_input);
        heartbeat = findViewById(R.id.heartbeat_input);
        keepAwake = findViewById(R.id.keep_awake);
        rate.setText(String.valueOf(prefs.maxPerMinute()));
        heartbeat.setText(String.valueOf(prefs.heartbeatSeconds()));
        keepAwake.setChecked(prefs.keepAwake());
        findViewById(R.id.button_save).setOnClickListener(v -> save());
        findViewById(R.id.button_forget).setOnClickListener(v -> forget());
    }

    private void save() {
        // Never above Android's own 30 a minute: past it Android stops and asks a user who is not there.
        int perMinute = PhoneEngine.clampRate(number(rate, prefs.maxPerMinute()));
        int seconds = Math.max(30, Math.min(600, number(heartbeat, prefs.heartbeatSeconds())));
        prefs.saveTuning(perMinute, seconds, keepAwake.isChecked());
        Gateway.get(this).restart();
        Toast.makeText(this, "Saved: " + perMinute + " SMS a minute, heartbeat every " + seconds + " s", Toast.LENGTH_SHORT).show();
        finish();
    }

    /** The handled job ids stay: a re-provisioned phone must still never send an old id again. */
    private void forget() {
        GatewayService.stop(this);
        prefs.forgetProvisioning();
        Gateway.get(this).stop();
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
