package org.otpgate.core.net;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.security.cert.CertificateException;
import org.junit.Test;

/** The pin is checked when the CA is loaded: only a CA with that SHA-256 is kept from what the CA URL served. */
public class PinnedCaTest {
    private static String text(String name) throws Exception {
        String dir = System.getProperty("otpgate.certs");
        if (dir == null) throw new IllegalStateException("-Dotpgate.certs is not set (scripts/jvm-test.sh sets it)");
        return new String(Files.readAllBytes(new File(dir, name).toPath()), StandardCharsets.UTF_8);
    }

    @Test
    public void keepsTheCertificateWithThePinnedFingerprintOutOfABundle() throws Exception {
        String fp = text("ca.fingerprint").trim();
        String bundle = text("rogue-ca.pem") + text("server.pem") + text("ca.pem");
        assertEquals(org.otpgate.core.Fingerprints.normalize(fp), org.otpgate.core.Fingerprints.of(PinnedCa.fromPem(bundle, fp)));
    }

    @Test
    public void refusesWhatDoesNotCarryThePin() throws Exception {
        String fp = text("ca.fingerprint").trim();
        refuse(text("rogue-ca.pem"), fp, "pinned SHA-256");
        refuse("not a certificate", fp, "pinned SHA-256");
        refuse(text("ca.pem"), "AB:CD", "not a SHA-256");
    }

    @Test
    public void refusesAPinnedCertificateThatIsNoCa() throws Exception {
        String serverPem = text("server.pem");
        String serverFp = org.otpgate.core.Fingerprints.of(org.otpgate.core.Pem.certificates(serverPem).get(0));
        refuse(serverPem, serverFp, "not a CA");
    }

    private static void refuse(String pem, String fp, String reasonPart) {
        try {
            PinnedCa.fromPem(pem, fp);
            fail("kept a certificate for pin " + fp);
        } catch (CertificateException e) {
            assertTrue(e.getMessage() + " should say " + reasonPart, e.getMessage().contains(reasonPart));
        }
    }

    @Test
    public void describesLinkFailuresWithoutTheToken() {
        Exception wrapped = new Exception("outer", new CertificateException("untrusted broker: x"));
        assertTrue(PhoneLink.isRefusal(wrapped));
        assertEquals("untrusted broker: x", PhoneLink.describe(wrapped));
        assertEquals("connection lost", PhoneLink.describe(null));
        assertTrue(!PhoneLink.isRefusal(new java.net.ConnectException("refused")));
    }
}
