package org.otpgate.core;

import java.security.cert.CertificateExpiredException;
import java.security.cert.CertificateNotYetValidException;
import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;

/**
 * CA pinning as tools/phone-simulator/pinning.ts does it. The phone accepts a
 * broker only if the CA with the provisioned SHA-256 fingerprint actually
 * issued the server's certificate (each step checked by name AND signature,
 * through at most three intermediates), every certificate on that path is in
 * date, the server certificate names the host dialled and may serve TLS.
 * Finding the fingerprint in the chain proves nothing alone: anyone can append
 * the real CA's public certificate to a chain of their own.
 *
 * The CA may be in the chain the broker presents (the gateway's does) or be the
 * PEM fetched from the provisioning {@code ca} URL, trusted only when its
 * fingerprint equals the pin.
 */
public final class PinnedChainVerifier {
    private static final String SERVER_AUTH_OID = "1.3.6.1.5.5.7.3.1";
    private static final String ANY_EXTENDED_KEY_USAGE = "2.5.29.37.0";
    /** Leaf plus up to three intermediates below the pinned CA. */
    private static final int MAX_PATH_LENGTH = 5;

    private final String pin;
    private final X509Certificate pinnedCa;

    /**
     * @param fingerprint the provisioned "AB:CD:…" SHA-256 of the CA
     * @param caFromUrl the CA downloaded at provisioning time, or null; ignored unless its fingerprint is the pin
     */
    public PinnedChainVerifier(String fingerprint, X509Certificate caFromUrl) {
        this.pin = Fingerprints.normalize(fingerprint);
        if (pin == null) throw new IllegalArgumentException("the pinned fingerprint is not a SHA-256 fingerprint");
        this.pinnedCa = caFromUrl != null && Fingerprints.of(caFromUrl).equals(pin) ? caFromUrl : null;
    }

    /** Null when the chain is trusted for {@code host} at {@code now}; otherwise why not. */
    public String problem(X509Certificate[] chain, String host, long now) {
        if (chain == null || chain.length == 0) return "the server presented no certificate";
        List<X509Certificate> candidates = new ArrayList<>();
        for (X509Certificate certificate : chain) candidates.add(certificate);
        if (pinnedCa != null) candidates.add(pinnedCa);

        X509Certificate leaf = chain[0];
        X509Certificate pinned = null;
        for (X509Certificate certificate : candidates) {
            if (Fingerprints.of(certificate).equals(pin)) {
                pinned = certificate;
                break;
            }
        }
        if (pinned == null) {
            return "none of the " + chain.length + " certificate(s) the server presented has the pinned CA fingerprint " + pin;
        }
        if (pinned.equals(leaf)) return "the pinned certificate is the server's own certificate, not a CA that issued it";

        // Walk up from the leaf, each step checked by name and by signature, until the pinned CA.
        List<X509Certificate> path = new ArrayList<>();
        path.add(leaf);
        X509Certificate current = leaf;
        while (!current.equals(pinned)) {
            if (path.size() > MAX_PATH_LENGTH) return "the certificate chain is too long";
            X509Certificate issuer = issuerOf(current, candidates);
            if (issuer == null) return describe(current) + " is not signed by any CA in the chain the server presented";
            if (path.contains(issuer)) return "the certificate chain loops";
            path.add(issuer);
            current = issuer;
        }

        for (X509Certificate certificate : path) {
            try {
                certificate.checkValidity(new Date(now));
            } catch (CertificateExpiredException | CertificateNotYetValidException e) {
                return describe(certificate) + " is expired or not yet valid";
            }
        }
        if (!HostnameMatcher.matches(leaf, host)) return "the server certificate is not valid for " + host;
        if (!mayServeTls(leaf)) return "the server certificate is not meant for TLS servers (extended key usage)";
        return null;
    }

    private static X509Certificate issuerOf(X509Certificate subject, List<X509Certificate> candidates) {
        for (X509Certificate candidate : candidates) {
            if (candidate.equals(subject)) continue;
            if (candidate.getBasicConstraints() < 0) continue; // not a CA
            if (!candidate.getSubjectX500Principal().equals(subject.getIssuerX500Principal())) continue;
            try {
                subject.verify(candidate.getPublicKey());
                return candidate;
            } catch (Exception e) {
                // Same name, other key: a forgery or a re-keyed CA. Keep looking.
            }
        }
        return null;
    }

    private static boolean mayServeTls(X509Certificate leaf) {
        List<String> usages;
        try {
            usages = leaf.getExtendedKeyUsage();
        } catch (CertificateParsingException e) {
            return false;
        }
        return usages == null || usages.contains(SERVER_AUTH_OID) || usages.contains(ANY_EXTENDED_KEY_USAGE);
    }

    private static String describe(X509Certificate certificate) {
        return "\"" + certificate.getSubjectX500Principal().getName() + "\"";
    }
}
