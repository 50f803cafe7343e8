package org.otpgate.core.net;

import java.security.GeneralSecurityException;
import java.security.cert.X509Certificate;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocketFactory;
import javax.net.ssl.TrustManager;
import org.otpgate.core.PinnedTrustManager;

/**
 * The socket factory Paho dials with: TLS whose only trust anchor is the
 * pinned CA ({@link PinnedTrustManager}). The system's CAs are deliberately
 * not consulted: a public CA cannot vouch for a private gateway. One factory
 * serves every broker of the provisioning URI: the host name each socket must
 * match is the one Paho dials, checked by the platform during the handshake.
 */
public final class PinnedTls {
    private PinnedTls() {}

    /** @param ca the CA loaded at provisioning (its pin checked), or null to take it from the broker's chain */
    public static SSLSocketFactory socketFactory(String fingerprint, X509Certificate ca) throws GeneralSecurityException {
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(null, new TrustManager[] {new PinnedTrustManager(fingerprint, ca)}, null);
        return context.getSocketFactory();
    }
}
