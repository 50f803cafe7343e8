package org.otpgate.client.device;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.HttpURLConnection;
import java.net.URL;
import java.nio.charset.StandardCharsets;

/**
 * Fetches the CA PEM named by the provisioning URI's {@code ca}. What comes
 * back is not trusted as such: the caller keeps only the certificate whose
 * SHA-256 equals the pinned fingerprint (core Pem.findByFingerprint).
 */
public final class CaDownloader {
    private static final int TIMEOUT_MS = 10_000;
    /** A CA certificate is a couple of kilobytes. */
    private static final int MAX_BYTES = 64 * 1024;

    private CaDownloader() {}

    /** Blocking: call off the main thread. */
    public static String fetch(String url) throws IOException {
        HttpURLConnection connection = (HttpURLConnection) new URL(url).openConnection();
        connection.setConnectTimeout(TIMEOUT_MS);
        connection.setReadTimeout(TIMEOUT_MS);
        connection.setInstanceFollowRedirects(true);
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
