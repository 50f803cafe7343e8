package org.otpgate.core;

import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.Date;
import org.junit.Test;

/**
 * The chain half of the broker check (the platform's PKIX with the pinned CA as
 * the only anchor); the host name half needs a handshake: PinnedTlsHandshakeTest.
 * The cases of test/phone-simulator/pinning.test.ts.
 */
public class PinnedTrustManagerTest {
    private static final Date NOW = new Date(TestCerts.validNow());
    private static final String AUTH = "ECDHE_ECDSA";

    private static PinnedTrustManager pinned(X509Certificate ca, Date at) throws CertificateException {
        return PinnedTrustManager.at(TestCerts.fingerprint("ca"), ca, at);
    }

    private static void trusted(PinnedTrustManager trust, String... chain) throws CertificateException {
        trust.checkServerTrusted(TestCerts.chain(chain), AUTH);
    }

    private static void refused(PinnedTrustManager trust, String reasonPart, String... chain) {
        try {
            trust.checkServerTrusted(TestCerts.chain(chain), AUTH);
            fail("trusted " + String.join(",", chain));
        } catch (CertificateException e) {
            assertTrue(e.getMessage() + " should start with untrusted broker", e.getMessage().startsWith("untrusted broker"));
            assertTrue(e.getMessage() + " should say " + reasonPart, e.getMessage().contains(reasonPart));
        }
    }

    @Test
    public void trustsTheGatewaysChainWithTheCaInIt() throws Exception {
        trusted(pinned(null, NOW), "server", "ca");
    }

    @Test
    public void buildsThePathThroughIntermediatesInAnyOrder() throws Exception {
        trusted(pinned(null, NOW), "via-intermediate", "intermediate", "ca");
        trusted(pinned(null, NOW), "via-intermediate", "ca", "intermediate");
        trusted(pinned(TestCerts.cert("ca"), NOW), "via-intermediate", "intermediate");
    }

    @Test
    public void trustsTheCaLoadedAtProvisioningWhenTheBrokerLeavesItOut() throws Exception {
        refused(pinned(null, NOW), "none of the 1 certificate(s)", "server");
        trusted(pinned(TestCerts.cert("ca"), NOW), "server");
    }

    @Test
    public void refusesToLoadACaThatIsNotThePinnedOne() {
        try {
            pinned(TestCerts.cert("rogue-ca"), NOW);
            fail("loaded a CA with another fingerprint");
        } catch (CertificateException expected) {
            assertTrue(expected.getMessage(), expected.getMessage().contains("is not the pinned"));
        }
    }

    @Test
    public void refusesAnotherCa() throws Exception {
        refused(pinned(null, NOW), "pinned CA fingerprint", "rogue-server", "rogue-ca");
        refused(pinned(TestCerts.cert("ca"), NOW), "", "rogue-server", "rogue-ca");
    }

    @Test
    public void refusesAChainThatMerelyContainsThePinnedCa() throws Exception {
        // The rogue CA has the real CA's name: only the signature tells them apart.
        refused(pinned(null, NOW), "", "rogue-server", "ca");
        refused(pinned(null, NOW), "", "rogue-server", "rogue-ca", "ca");
    }

    @Test
    public void refusesACertificateIssuedByALeaf() throws Exception {
        refused(pinned(null, NOW), "", "signed-by-leaf", "server", "ca");
    }

    @Test
    public void refusesExpiredAndNotYetValidChains() throws Exception {
        refused(pinned(null, new Date(TestCerts.afterValidity("server"))), "", "server", "ca");
        refused(pinned(null, new Date(TestCerts.beforeValidity("server"))), "", "server", "ca");
    }

    @Test
    public void refusesACertificateNotMeantForServers() throws Exception {
        refused(pinned(null, NOW), "", "client-only", "ca");
    }

    @Test
    public void refusesPinningTheServerCertificateItself() throws Exception {
        PinnedTrustManager leafPin = PinnedTrustManager.at(Fingerprints.of(TestCerts.cert("server")), null, NOW);
        refused(leafPin, "not a CA", "server", "ca");
        try {
            PinnedTrustManager.at(Fingerprints.of(TestCerts.cert("server")), TestCerts.cert("server"), NOW);
            fail("loaded a server certificate as the CA");
        } catch (CertificateException expected) {
            assertTrue(expected.getMessage(), expected.getMessage().contains("not a CA"));
        }
    }

    @Test
    public void refusesAnEmptyChainAClientAndABadPin() throws Exception {
        refused(pinned(null, NOW), "no certificate");
        try {
            pinned(null, NOW).checkClientTrusted(TestCerts.chain("server", "ca"), AUTH);
            fail("judged a client");
        } catch (CertificateException expected) {
            // only the broker is judged
        }
        try {
            new PinnedTrustManager("AB:CD", null);
            fail("accepted a bad pin");
        } catch (IllegalArgumentException expected) {
            // a pin is 32 bytes
        }
    }
}
