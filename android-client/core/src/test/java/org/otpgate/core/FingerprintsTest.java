package org.otpgate.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import java.security.cert.X509Certificate;
import java.util.List;
import org.junit.Test;

public class FingerprintsTest {
    private static final String FP = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";

    @Test
    public void normalizesEverySpellingToUpperCasePairs() {
        assertEquals(FP, Fingerprints.normalize(FP));
        assertEquals(FP, Fingerprints.normalize(FP.toLowerCase()));
        assertEquals(FP, Fingerprints.normalize(FP.replace(":", "")));
        assertEquals(FP, Fingerprints.normalize(" \t" + FP + "\n"));
        assertNull(Fingerprints.normalize("AB:CD"));
        assertNull(Fingerprints.normalize(FP + ":00"));
        assertNull(Fingerprints.normalize(FP.replace('A', 'G')));
        assertNull(Fingerprints.normalize(FP.replace(":", "-")));
        assertNull(Fingerprints.normalize(null));
    }

    @Test
    public void fingerprintsACertificateAsOpensslAndNodeDo() {
        assertEquals(TestCerts.fingerprint("ca"), Fingerprints.of(TestCerts.cert("ca")));
        assertEquals(TestCerts.fingerprint("intermediate"), Fingerprints.of(TestCerts.cert("intermediate")));
    }

    @Test
    public void findsThePinnedCertificateInABundleAndNothingElse() {
        String bundle = TestCerts.text("rogue-ca.pem") + "junk\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
                + TestCerts.text("ca.pem") + TestCerts.text("intermediate.pem");
        List<X509Certificate> all = Pem.certificates(bundle);
        assertEquals(3, all.size());
        X509Certificate found = Pem.findByFingerprint(bundle, TestCerts.fingerprint("ca").toLowerCase());
        assertNotNull(found);
        assertEquals(TestCerts.cert("ca"), found);
        assertNull(Pem.findByFingerprint(TestCerts.text("rogue-ca.pem"), TestCerts.fingerprint("ca")));
        assertNull(Pem.findByFingerprint(bundle, "nope"));
    }

    @Test
    public void writesPemThatReadsBack() throws Exception {
        String pem = Pem.encode(TestCerts.cert("ca"));
        assertTrue(pem.startsWith("-----BEGIN CERTIFICATE-----\n"));
        assertEquals(TestCerts.cert("ca"), Pem.certificates(pem).get(0));
    }
}
