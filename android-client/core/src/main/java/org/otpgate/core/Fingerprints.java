package org.otpgate.core;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.cert.CertificateEncodingException;
import java.security.cert.X509Certificate;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * SHA-256 certificate fingerprints in the project's one spelling,
 * "AB:CD:…" (broker/fingerprint.ts), so they compare as plain strings.
 */
public final class Fingerprints {
    private static final Pattern SHA256_HEX = Pattern.compile("[0-9A-F]{64}");

    private Fingerprints() {}

    /** "ab:cd…", "ABCD…" (colons optional) → "AB:CD:…"; null when it is not 32 bytes of hex. */
    public static String normalize(String input) {
        if (input == null) return null;
        String hex = input.trim().replace(":", "").toUpperCase(Locale.ROOT);
        if (!SHA256_HEX.matcher(hex).matches()) return null;
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < hex.length(); i += 2) {
            if (i > 0) out.append(':');
            out.append(hex, i, i + 2);
        }
        return out.toString();
    }

    public static String of(byte[] der) {
        byte[] digest;
        try {
            digest = MessageDigest.getInstance("SHA-256").digest(der);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java and Android runtime has SHA-256", e);
        }
        StringBuilder out = new StringBuilder();
        for (byte b : digest) {
            if (out.length() > 0) out.append(':');
            out.append(String.format("%02X", b & 0xff));
        }
        return out.toString();
    }

    public static String of(X509Certificate certificate) {
        try {
            return of(certificate.getEncoded());
        } catch (CertificateEncodingException e) {
            // A certificate that cannot be encoded has no fingerprint to match any pin.
            return "";
        }
    }
}
