package org.otpgate.core.net;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.HttpURLConnection;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import org.otpgate.core.Fingerprints;
import org.otpgate.core.Pem;
import org.otpgate.core.PinnedTrustManager;

/**
 * The CA a phone trusts, fetched from the provisioning URI's {@code ca} URL
 * and kept only when its SHA-256 is the pinned fingerprint. The URL may be
 * plain http: the pin, not the channel, makes the certificate trustworthy, and
 * only the one certificate with that fingerprint is kept from what came back.
 */
public final class PinnedCa {
    private static final int TIMEOUT_MS = 10_000;
    /** A CA certificate is a couple of kilobytes. */
    private static final int MAX_BYTES = 64 * 1024;

    private PinnedCa() {}

    /** Blocking (off the main thread on Android): fetches {@code url} and returns the pinned CA in it. */
    public static X509Certificate fetch(String url, String fingerprint) throws IOException, CertificateException {
        return fromPem(download(url), fingerprint);
    }

    /** The certificate of {@code pem} that is a CA with SHA-256 {@code fingerprint}; throws when there is none. */
    public static X509Certificate fromPem(String pem, String fingerprint) throws CertificateException {
        String wanted = Fingerprints.normalize(fingerprint);
        if (wanted == null) throw new CertificateException("the pin is not a SHA-256 fingerprint");
        X509Certificate ca = Pem.findByFingerprint(pem, wanted);
        if (ca == null) {
            throw new CertificateException("untrusted broker: no certificate from the CA URL has the pinned SHA-256 " + wanted
                    + " (the gateway's CA changed, or the URI was tampered with)");
        }
        return PinnedTrustManager.requirePinnedCa(ca, wanted);
    }

    static String download(String url) throws IOException {
        HttpURLConnection connection = (HttpURLConnection) new URL(url).openConnection();
        connection.setConnectTimeout(TIMEOUT_MS);
        connection.setReadTimeout(TIMEOUT_MS);
        // A redirect could lead anywhere; the pin makes that harmless, but there is no reason to follow one.
        connection.setInstanceFollowRedirects(false);
        try {
            int status = connection.getResponseCode();
            if (status != HttpURLConnection.HTTP_OK) throw new IOException("HTTP " + status + " from " + url);
            try (InputStream in = connection.getInputStream()) {
                ByteArrayOutputStream out = new ByteArrayOutputStream();
                byte[] buffer = new byte[4096];
                for (int n; (n = in.read(buffer)) > 0; ) {
                    out.write(buffer, 0, n);
                    if (out.size() > MAX_BYTES) throw new IOException("the CA at " + url + " is over " + MAX_BYTES + " bytes");
                }
                return new String(out.toByteArray(), StandardCharsets.UTF_8);
            }
        } finally {
            connection.disconnect();
        }
    }
}
