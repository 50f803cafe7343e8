package org.otpgate.core;

import java.io.ByteArrayInputStream;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Certificates out of PEM text, e.g. the CA the provisioning URI's {@code ca} URL serves. */
public final class Pem {
    private static final Pattern BLOCK =
            Pattern.compile("-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\\s]+?)-----END CERTIFICATE-----");

    private Pem() {}

    /** Every parsable certificate block, in order; unparsable blocks are skipped. */
    public static List<X509Certificate> certificates(String pem) {
        List<X509Certificate> out = new ArrayList<>();
        Matcher m = BLOCK.matcher(pem);
        while (m.find()) {
            try {
                byte[] der = Base64.getMimeDecoder().decode(m.group(1));
                out.add(decode(der));
            } catch (IllegalArgumentException | CertificateException e) {
                // Not a certificate; it cannot be the pinned CA, keep looking.
            }
        }
        return out;
    }

    public static X509Certificate decode(byte[] der) throws CertificateException {
        CertificateFactory factory = CertificateFactory.getInstance("X.509");
        return (X509Certificate) factory.generateCertificate(new ByteArrayInputStream(der));
    }

    /**
     * The certificate of {@code pem} whose fingerprint is {@code fingerprint},
     * or null. Only that one is trusted, never the rest of a bundle fetched over
     * a channel that may have been tampered with (the CA URL may be plain http).
     */
    public static X509Certificate findByFingerprint(String pem, String fingerprint) {
        String wanted = Fingerprints.normalize(fingerprint);
        if (wanted == null) return null;
        for (X509Certificate certificate : certificates(pem)) {
            if (Fingerprints.of(certificate).equals(wanted)) return certificate;
        }
        return null;
    }

    public static String encode(X509Certificate certificate) throws CertificateException {
        String base64 = Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(certificate.getEncoded());
        return "-----BEGIN CERTIFICATE-----\n" + base64 + "\n-----END CERTIFICATE-----\n";
    }
}
