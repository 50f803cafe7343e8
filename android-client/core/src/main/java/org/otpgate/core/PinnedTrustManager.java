package org.otpgate.core;

import java.net.Socket;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.CertPathValidatorException;
import java.security.cert.CertificateException;
import java.security.cert.PKIXBuilderParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509CertSelector;
import java.security.cert.X509Certificate;
import java.util.Collections;
import java.util.Date;
import javax.net.ssl.CertPathTrustManagerParameters;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedTrustManager;

/**
 * The only trust the MQTT connection has: the provisioned CA. The chain is
 * judged by the platform's PKIX trust manager (Conscrypt on Android, SunJSSE
 * on the JVM) with the pinned CA as its one trust anchor, so signatures,
 * validity, basicConstraints, path length, name constraints and extended key
 * usage are checked by code that thousands of apps rely on, not by ours. The
 * host name is checked by the platform too: the handshake is refused unless
 * the socket asks for endpoint identification "HTTPS" (Paho does with
 * {@code setHttpsHostnameVerificationEnabled(true)}, its default), so turning
 * the name check off cannot happen silently.
 *
 * <p>The pin is the SHA-256 of the CA certificate, checked once, when the CA
 * is loaded: the one fetched from the provisioning {@code ca} URL, or, when
 * there was none, the certificate with that fingerprint in the chain the
 * broker presents (the gateway sends its CA along). Only a CA can be pinned:
 * pinning the server's own certificate would make it its own anchor.
 */
public final class PinnedTrustManager extends X509ExtendedTrustManager {
    private final String pin;
    /** From the loaded CA; null until a chain brings the pinned CA along. */
    private final X509ExtendedTrustManager fixed;
    /** Tests only: validate as of this time instead of now. */
    private final Date at;

    /**
     * @param fingerprint the provisioned "AB:CD:…" SHA-256 of the CA
     * @param ca the CA loaded at provisioning, or null to take it from the broker's chain
     * @throws CertificateException when {@code ca} is not a CA with that fingerprint
     */
    public PinnedTrustManager(String fingerprint, X509Certificate ca) throws CertificateException {
        this(fingerprint, ca, null);
    }

    private PinnedTrustManager(String fingerprint, X509Certificate ca, Date at) throws CertificateException {
        this.pin = Fingerprints.normalize(fingerprint);
        if (pin == null) throw new IllegalArgumentException("the pinned fingerprint is not a SHA-256 fingerprint");
        this.at = at;
        this.fixed = ca == null ? null : platform(requirePinnedCa(ca, pin), at);
    }

    /** Tests only: a trust manager that judges validity as of {@code at} (the JVM's PKIX accepts a date; Android's does not). */
    static PinnedTrustManager at(String fingerprint, X509Certificate ca, Date at) throws CertificateException {
        return new PinnedTrustManager(fingerprint, ca, at);
    }

    /** {@code ca} itself when it is a CA certificate whose SHA-256 is {@code fingerprint}. */
    public static X509Certificate requirePinnedCa(X509Certificate ca, String fingerprint) throws CertificateException {
        String wanted = Fingerprints.normalize(fingerprint);
        if (wanted == null || !Fingerprints.of(ca).equals(wanted)) {
            throw new CertificateException("untrusted broker: the CA's SHA-256 " + Fingerprints.of(ca) + " is not the pinned " + fingerprint);
        }
        if (ca.getBasicConstraints() < 0) {
            throw new CertificateException("untrusted broker: the pinned certificate is not a CA (it may be the server's own certificate)");
        }
        return ca;
    }

    // --- what the TLS stacks call ----------------------------------------------

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
        if (socket instanceof SSLSocket) requireNameCheck(((SSLSocket) socket).getSSLParameters());
        try {
            trustFor(chain).checkServerTrusted(chain, authType, socket);
        } catch (CertificateException e) {
            throw untrusted(e);
        }
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine) throws CertificateException {
        if (engine != null) requireNameCheck(engine.getSSLParameters());
        try {
            trustFor(chain).checkServerTrusted(chain, authType, engine);
        } catch (CertificateException e) {
            throw untrusted(e);
        }
    }

    /** The chain alone, without the host name (no socket to take it from); TLS stacks call the forms above. */
    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
        try {
            trustFor(chain).checkServerTrusted(chain, authType);
        } catch (CertificateException e) {
            throw untrusted(e);
        }
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
        throw new CertificateException("this trust manager only judges the broker");
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
        checkClientTrusted(chain, authType);
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine) throws CertificateException {
        checkClientTrusted(chain, authType);
    }

    @Override
    public X509Certificate[] getAcceptedIssuers() {
        return new X509Certificate[0];
    }

    // --- inside ----------------------------------------------------------------

    private X509ExtendedTrustManager trustFor(X509Certificate[] chain) throws CertificateException {
        if (chain == null || chain.length == 0) throw new CertificateException("the server presented no certificate");
        if (fixed != null) return fixed;
        for (X509Certificate certificate : chain) {
            if (Fingerprints.of(certificate).equals(pin)) return platform(requirePinnedCa(certificate, pin), at);
        }
        throw new CertificateException("none of the " + chain.length + " certificate(s) the server presented has the pinned CA fingerprint " + pin
                + ", and no CA was loaded at provisioning");
    }

    private static void requireNameCheck(SSLParameters parameters) throws CertificateException {
        if (!"HTTPS".equalsIgnoreCase(parameters.getEndpointIdentificationAlgorithm())) {
            throw new CertificateException("untrusted broker: the connection does not check the host name"
                    + " (set the socket's endpoint identification algorithm to HTTPS; Paho: setHttpsHostnameVerificationEnabled(true))");
        }
    }

    private static CertificateException untrusted(CertificateException e) {
        String message = e.getMessage();
        if (message != null && message.startsWith("untrusted broker")) return e;
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) root = root.getCause();
        String why = root instanceof CertPathValidatorException || root == e ? String.valueOf(root.getMessage()) : message + " (" + root.getMessage() + ")";
        return new CertificateException("untrusted broker: " + why, e);
    }

    /** The platform's PKIX trust manager whose only anchor is {@code ca}. */
    private static X509ExtendedTrustManager platform(X509Certificate ca, Date at) throws CertificateException {
        try {
            KeyStore anchors = KeyStore.getInstance(KeyStore.getDefaultType());
            anchors.load(null, null);
            anchors.setCertificateEntry("pinned-ca", ca);
            TrustManagerFactory factory = TrustManagerFactory.getInstance("PKIX");
            if (at == null) {
                factory.init(anchors);
            } else {
                PKIXBuilderParameters parameters = new PKIXBuilderParameters(Collections.singleton(new TrustAnchor(ca, null)), new X509CertSelector());
                parameters.setRevocationEnabled(false);
                parameters.setDate(at);
                factory.init(new CertPathTrustManagerParameters(parameters));
            }
            for (TrustManager manager : factory.getTrustManagers()) {
                if (manager instanceof X509ExtendedTrustManager) return (X509ExtendedTrustManager) manager;
            }
            throw new CertificateException("the platform has no X509ExtendedTrustManager for PKIX");
        } catch (GeneralSecurityException | java.io.IOException e) {
            if (e instanceof CertificateException) throw (CertificateException) e;
            throw new CertificateException("cannot set up the platform's trust manager: " + e.getMessage(), e);
        }
    }
}
