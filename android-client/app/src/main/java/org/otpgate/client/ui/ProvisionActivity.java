package org.otpgate.client.ui;

import android.app.Activity;
import android.content.ActivityNotFoundException;
import android.content.Intent;
import android.net.Uri;
import android.os.Bundle;
import android.view.View;
import android.widget.Button;
import android.widget.EditText;
import android.widget.TextView;
import java.io.IOException;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.otpgate.client.Gateway;
import org.otpgate.client.R;
import org.otpgate.client.service.GatewayService;
import org.otpgate.client.store.Prefs;
import org.otpgate.core.Pem;
import org.otpgate.core.Provisioning;
import org.otpgate.core.ProvisioningReview;
import org.otpgate.core.net.PinnedCa;

/**
 * Provisioning by pasting the URI (the sure path), by the phone's camera
 * opening the otpgate://provision link of the QR code, or by a QR scanner app
 * that answers ZXing's SCAN intent. However the URI arrives, and a web page can
 * send one, nothing is applied until the screen has shown the gateway, the
 * device id and the CA fingerprint (core ProvisioningReview, with a warning
 * when it replaces the current setup) and the user has tapped to confirm.
 * The CA named by {@code ca} is then fetched and kept only if its fingerprint
 * is the pinned one.
 */
public final class ProvisionActivity extends Activity {
    private static final int SCAN = 1;
    /** The action and result extra of ZXing's Barcode Scanner, also answered by other scanner apps. */
    private static final String SCAN_ACTION = "com.google.zxing.client.android.SCAN";
    private static final String SCAN_RESULT = "SCAN_RESULT";

    private final ExecutorService background = Executors.newSingleThreadExecutor();
    private EditText input;
    private TextView review;
    private Button confirm;
    private TextView result;
    /** The URI under review; applied only by a tap on {@link #confirm}. */
    private String pending;

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        setContentView(R.layout.activity_provision);
        EdgeToEdge.apply(this);
        input = findViewById(R.id.uri_input);
        review = findViewById(R.id.provision_review);
        confirm = findViewById(R.id.button_confirm);
        result = findViewById(R.id.provision_result);
        findViewById(R.id.button_scan).setOnClickListener(v -> scan());
        findViewById(R.id.button_use_uri).setOnClickListener(v -> review(input.getText().toString()));
        confirm.setOnClickListener(v -> apply());
        findViewById(R.id.button_cancel).setOnClickListener(v -> clearReview());
        reviewLink(getIntent());
    }

    @Override
    protected void onNewIntent(Intent intent) {
        super.onNewIntent(intent);
        setIntent(intent);
        reviewLink(intent);
    }

    @Override
    protected void onDestroy() {
        // Not shutdownNow: its interrupt can abort the CA download (Android's HttpURLConnection checks it), and a
        // provisioning confirmed before a rotation would then be saved without its CA. The tasks end on their own.
        background.shutdown();
        super.onDestroy();
    }

    private void reviewLink(Intent intent) {
        Uri link = intent == null ? null : intent.getData();
        if (link != null) review(link.toString());
    }

    private void scan() {
        Intent intent = new Intent(SCAN_ACTION).putExtra("SCAN_MODE", "QR_CODE_MODE");
        try {
            startActivityForResult(intent, SCAN);
        } catch (ActivityNotFoundException e) {
            result.setText(R.string.no_scanner);
        }
    }

    @Override
    protected void onActivityResult(int requestCode, int resultCode, Intent data) {
        super.onActivityResult(requestCode, resultCode, data);
        if (requestCode != SCAN || resultCode != RESULT_OK || data == null) return;
        String contents = data.getStringExtra(SCAN_RESULT);
        if (contents != null) review(contents);
    }

    /** Parses and compares with the current setup off the main thread (Prefs reads a file), then shows the review. */
    private void review(String uri) {
        clearReview();
        final Provisioning proposed;
        try {
            proposed = Provisioning.parse(uri);
        } catch (Provisioning.InvalidException e) {
            result.setText(getString(R.string.provision_invalid, e.getMessage()));
            return;
        }
        background.execute(() -> {
            Provisioning current = new Prefs(this).provisioning();
            ProvisioningReview verdict = ProvisioningReview.of(current, proposed);
            String text = verdict.text(current);
            runOnUiThread(() -> show(uri, verdict, text));
        });
    }

    private void show(String uri, ProvisioningReview verdict, String text) {
        if (isFinishing() || isDestroyed()) return;
        pending = uri;
        review.setText(text);
        review.setVisibility(View.VISIBLE);
        switch (verdict.kind) {
            case REPLACES:
                confirm.setText(R.string.button_replace);
                break;
            case SAME:
                confirm.setText(R.string.button_apply_again);
                break;
            case FIRST:
            default:
                confirm.setText(R.string.button_apply);
        }
        confirm.setVisibility(View.VISIBLE);
        findViewById(R.id.button_cancel).setVisibility(View.VISIBLE);
        result.setText("");
    }

    private void clearReview() {
        pending = null;
        review.setVisibility(View.GONE);
        confirm.setVisibility(View.GONE);
        findViewById(R.id.button_cancel).setVisibility(View.GONE);
    }

    private void apply() {
        String uri = pending;
        if (uri == null) return;
        clearReview();
        final Provisioning provisioning;
        try {
            provisioning = Provisioning.parse(uri);
        } catch (Provisioning.InvalidException e) {
            result.setText(getString(R.string.provision_invalid, e.getMessage()));
            return;
        }
        result.setText(getString(R.string.provision_checking, provisioning.deviceId, provisioning.broker().toString()));
        background.execute(() -> {
            String caPem = null;
            String note = "";
            if (provisioning.caUrl != null) {
                try {
                    // The same fetch and pin check as the core's link: only a CA with the pinned SHA-256 is kept.
                    X509Certificate ca = PinnedCa.fetch(provisioning.caUrl, provisioning.caFingerprint);
                    caPem = Pem.encode(ca);
                    note = "\nCA fetched and matches the pinned fingerprint.";
                } catch (CertificateException e) {
                    note = "\nThe CA at " + provisioning.caUrl + " does NOT match the pinned fingerprint; it is ignored "
                            + "(the broker must present its CA in its chain). " + e.getMessage();
                } catch (IOException e) {
                    note = "\nCould not fetch the CA (" + e.getMessage() + "); the broker must present it in its chain.";
                }
            }
            boolean saved = new Prefs(this).saveProvisioning(uri, caPem);
            if (saved) {
                // Here, not in saved(): a screen rotated or closed during the CA download is gone by now, and the
                // new setup must still replace the running one.
                Gateway.get(this).restart();
                GatewayService.start(this, "after provisioning");
            }
            String message = note;
            runOnUiThread(() -> saved(saved, provisioning, message));
        });
    }

    private void saved(boolean saved, Provisioning provisioning, String note) {
        if (isFinishing() || isDestroyed()) return;
        if (!saved) {
            result.setText(R.string.provision_not_saved);
            return;
        }
        result.setText("Provisioned as " + provisioning.deviceId + " for " + provisioning.broker() + ", CA pin "
                + provisioning.caFingerprint + "." + note);
    }
}
