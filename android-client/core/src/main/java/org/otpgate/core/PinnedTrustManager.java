package org.otpgate.core;

import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import javax.net.ssl.X509TrustManager;

/**
 * The only trust the MQTT connection has: the provisioned CA, checked by
 * {@link PinnedChainVerifier} during the handshake, before Paho writes the
 * CONNECT packet that carries the token. javax.net.ssl is the same on Android
 * and on the JVM, so this class is tested here with a real TLS handshake.
 */
public final class PinnedTrustManager implements X509TrustManager {
    public interface Clock {
        long now();
    }

    private final PinnedChainVerifier verifier;
    private final String host;
    private final Clock clock;

    /** @param host the name (or IP) dialled, without IPv6 brackets: the certificate must carry it */
    public PinnedTrustManager(PinnedChainVerifier verifier, String host, Clock clock) {
        this.verifier = verifier;
        this.host = host;
        this.clock = clock;
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
        String problem = verifier.problem(chain, host, clock.now());
        if (problem != null) throw new CertificateException("untrusted broker: " + problem);
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
        throw new CertificateException("this trust manager only judges the broker");
    }

    @Override
    public X509Certificate[] getAcceptedIssuers() {
        return new X509Certificate[0];
    }
}
