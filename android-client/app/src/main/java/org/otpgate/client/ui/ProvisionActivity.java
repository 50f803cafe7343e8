package org.otpgate.client.ui;

import android.net.Uri;
import android.os.Bundle;
import android.widget.EditText;
import android.widget.TextView;
import androidx.activity.result.ActivityResultLauncher;
import androidx.appcompat.app.AppCompatActivity;
import com.journeyapps.barcodescanner.ScanContract;
import com.journeyapps.barcodescanner.ScanOptions;
import java.io.IOException;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.otpgate.client.Gateway;
import org.otpgate.client.R;
import org.otpgate.client.device.CaDownloader;
import org.otpgate.client.service.GatewayService;
import org.otpgate.client.store.Prefs;
import org.otpgate.core.Pem;
import org.otpgate.core.Provisioning;

/**
 * Provisioning by QR code (ZXing), by pasting the URI, or by opening an
 * otpgate://provision link. The URI is checked with the same rules as the
 * server's (core Provisioning); the CA named by {@code ca} is fetched and kept
 * only if its fingerprint is the pinned one.
 */
public final class ProvisionActivity extends AppCompatActivity {
    private final ExecutorService background = Executors.newSingleThreadExecutor();
    private final ActivityResultLauncher<ScanOptions> scanner = registerForActivityResult(new ScanContract(), scan -> {
        if (scan.getContents() != null) use(scan.getContents());
    });
    private EditText input;
    private TextView result;

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        setContentView(R.layout.activity_provision);
        input = findViewById(R.id.uri_input);
        result = findViewById(R.id.provision_result);
        findViewById(R.id.button_scan).setOnClickListener(v -> {
            ScanOptions options = new ScanOptions();
            options.setDesiredBarcodeFormats(ScanOptions.QR_CODE);
            options.setPrompt(getString(R.string.scan_prompt));
            options.setBeepEnabled(false);
            options.setOrientationLocked(false);
            scanner.launch(options);
        });
        findViewById(R.id.button_use_uri).setOnClickListener(v -> use(input.getText().toString()));
        Uri link = getIntent().getData();
        if (link != null) use(link.toString());
    }

    @Override
    protected void onDestroy() {
        background.shutdownNow();
        super.onDestroy();
    }

    private void use(String uri) {
        input.setText(uri);
        final Provisioning provisioning;
        try {
            provisioning = Provisioning.parse(uri);
        } catch (Provisioning.InvalidException e) {
            result.setText(getString(R.string.provision_invalid, e.getMessage()));
            return;
        }
        result.setText("Checking " + provisioning.deviceId + " at " + provisioning.mqttUrl + "…");
        background.execute(() -> {
            String caPem = null;
            String note = "";
            if (provisioning.caUrl != null) {
                try {
                    X509Certificate ca = Pem.findByFingerprint(CaDownloader.fetch(provisioning.caUrl), provisioning.caFingerprint);
                    if (ca != null) {
                        caPem = Pem.encode(ca);
                        note = "\nCA fetched and matches the pinned fingerprint.";
                    } else {
                        note = "\nThe CA at " + provisioning.caUrl + " does NOT match the pinned fingerprint; it is ignored "
                                + "(the broker must present its CA in its chain).";
                    }
                } catch (IOException | CertificateException e) {
                    note = "\nCould not fetch the CA (" + e.getMessage() + "); the broker must present it in its chain.";
                }
            }
            String pem = caPem;
            String message = note;
            runOnUiThread(() -> save(uri, provisioning, pem, message));
        });
    }

    private void save(String uri, Provisioning provisioning, String caPem, String note) {
        if (isFinishing() || isDestroyed()) return;
        if (!new Prefs(this).saveProvisioning(uri, caPem)) {
            result.setText("Could not save the provisioning.");
            return;
        }
        Gateway.get(this).restart();
        GatewayService.start(this);
        result.setText("Provisioned as " + provisioning.deviceId + " for " + provisioning.mqttUrl + ", CA pin "
                + provisioning.caFingerprint + "." + note);
    }
}
