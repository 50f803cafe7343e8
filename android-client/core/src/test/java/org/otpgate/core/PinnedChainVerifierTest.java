package org.otpgate.core;

import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import org.junit.Test;

/** The cases of test/phone-simulator/pinning.test.ts, against the Java verifier. */
public class PinnedChainVerifierTest {
    private static final long NOW = TestCerts.validNow();
    private static final PinnedChainVerifier PIN = new PinnedChainVerifier(TestCerts.fingerprint("ca"), null);

    private static void trusted(PinnedChainVerifier verifier, String host, String... chain) {
        String problem = verifier.problem(TestCerts.chain(chain), host, NOW);
        assertNull(problem, problem);
    }

    private static void refused(PinnedChainVerifier verifier, String host, long now, String reasonPart, String... chain) {
        String problem = verifier.problem(TestCerts.chain(chain), host, now);
        if (problem == null) fail("trusted " + String.join(",", chain) + " for " + host);
        assertTrue(problem + " should say " + reasonPart, problem.contains(reasonPart));
    }

    @Test
    public void trustsTheGatewaysChainForTheNamesItCarries() {
        trusted(PIN, "localhost", "server", "ca");
        trusted(PIN, "LOCALHOST.", "server", "ca");
        trusted(PIN, "127.0.0.1", "server", "ca");
        trusted(PIN, "::1", "server", "ca");
        trusted(PIN, "0:0:0:0:0:0:0:1", "server", "ca");
    }

    @Test
    public void walksThroughIntermediatesInAnyOrder() {
        trusted(PIN, "localhost", "via-intermediate", "intermediate", "ca");
        trusted(PIN, "localhost", "via-intermediate", "ca", "intermediate");
    }

    @Test
    public void trustsTheCaFetchedAtProvisioningWhenTheBrokerLeavesItOut() {
        refused(PIN, "localhost", NOW, "none of the 1 certificate(s)", "server");
        PinnedChainVerifier withCa = new PinnedChainVerifier(TestCerts.fingerprint("ca"), TestCerts.cert("ca"));
        trusted(withCa, "localhost", "server");
        // A fetched CA that is not the pinned one is ignored.
        PinnedChainVerifier withRogue = new PinnedChainVerifier(TestCerts.fingerprint("ca"), TestCerts.cert("rogue-ca"));
        refused(withRogue, "localhost", NOW, "pinned CA fingerprint", "rogue-server", "rogue-ca");
    }

    @Test
    public void refusesAnotherCa() {
        refused(PIN, "localhost", NOW, "pinned CA fingerprint", "rogue-server", "rogue-ca");
    }

    @Test
    public void refusesAChainThatMerelyContainsThePinnedCa() {
        // The rogue CA has the real CA's name: only the signature tells them apart.
        refused(PIN, "localhost", NOW, "is not signed by any CA", "rogue-server", "ca");
        refused(PIN, "localhost", NOW, "is not signed by any CA", "rogue-server", "rogue-ca", "ca");
    }

    @Test
    public void refusesACertificateIssuedByALeaf() {
        refused(PIN, "localhost", NOW, "is not signed by any CA", "signed-by-leaf", "server", "ca");
    }

    @Test
    public void refusesTheWrongHost() {
        refused(PIN, "gateway.example.com", NOW, "not valid for gateway.example.com", "server", "ca");
        refused(PIN, "10.0.0.1", NOW, "not valid for 10.0.0.1", "server", "ca");
    }

    @Test
    public void matchesWildcardsOnOneLabelOnlyAndTheCnOnlyWithoutDnsNames() {
        trusted(PIN, "mqtt.example.test", "wildcard", "ca");
        refused(PIN, "example.test", NOW, "not valid", "wildcard", "ca");
        refused(PIN, "a.b.example.test", NOW, "not valid", "wildcard", "ca");
        trusted(PIN, "cn-only.example.test", "cn-only", "ca");
        refused(PIN, "wildcard", NOW, "not valid", "wildcard", "ca");
    }

    @Test
    public void refusesExpiredAndNotYetValidChains() {
        long future = TestCerts.afterValidity("server");
        long past = TestCerts.beforeValidity("server");
        refused(PIN, "localhost", future, "expired or not yet valid", "server", "ca");
        refused(PIN, "localhost", past, "expired or not yet valid", "server", "ca");
    }

    @Test
    public void refusesACertificateNotMeantForServers() {
        refused(PIN, "localhost", NOW, "extended key usage", "client-only", "ca");
    }

    @Test
    public void refusesPinningTheServerCertificateItself() {
        PinnedChainVerifier leafPin = new PinnedChainVerifier(Fingerprints.of(TestCerts.cert("server")), null);
        refused(leafPin, "localhost", NOW, "server's own certificate", "server", "ca");
    }

    @Test
    public void refusesAnEmptyChainAndABadPin() {
        assertTrue(PIN.problem(new java.security.cert.X509Certificate[0], "localhost", NOW).contains("no certificate"));
        try {
            new PinnedChainVerifier("AB:CD", null);
            fail("accepted a bad pin");
        } catch (IllegalArgumentException expected) {
            // a pin is 32 bytes
        }
    }
}
