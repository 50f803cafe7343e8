package org.otpgate.client.mqtt;

import java.security.GeneralSecurityException;
import java.security.cert.X509Certificate;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocketFactory;
import javax.net.ssl.TrustManager;
import org.otpgate.core.PinnedChainVerifier;
import org.otpgate.core.PinnedTrustManager;
import org.otpgate.core.Provisioning;

/**
 * The socket factory Paho dials with: TLS whose only trust is the provisioned
 * CA (core's PinnedTrustManager, tested on the JVM with a real handshake). The
 * system's CAs are deliberately not consulted: a public CA cannot vouch for a
 * private gateway.
 */
final class TlsSockets {
    private TlsSockets() {}

    static SSLSocketFactory pinned(Provisioning provisioning, X509Certificate caFromUrl) throws GeneralSecurityException {
        PinnedChainVerifier verifier = new PinnedChainVerifier(provisioning.caFingerprint, caFromUrl);
        PinnedTrustManager trust = new PinnedTrustManager(verifier, provisioning.broker().certificateName(), System::currentTimeMillis);
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(null, new TrustManager[] {trust}, null);
        return context.getSocketFactory();
    }
}
