package org.otpgate.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.net.InetAddress;
import java.net.Socket;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLHandshakeException;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManager;
import org.junit.After;
import org.junit.Test;

/**
 * Real TLS handshakes on loopback, the phone's side trusting only
 * PinnedTrustManager and asking the platform to check the host name
 * (endpoint identification "HTTPS", as Paho does), under the name dialled.
 */
public class PinnedTlsHandshakeTest {
    private final ExecutorService executor = Executors.newSingleThreadExecutor();

    @After
    public void stop() {
        executor.shutdownNow();
    }

    private SSLServerSocket broker(String leaf, String... chain) throws Exception {
        KeyStore store = KeyStore.getInstance("PKCS12");
        store.load(null, null);
        Certificate[] certs = TestCerts.chain(chain);
        store.setKeyEntry("broker", TestCerts.key(leaf), "pw".toCharArray(), certs);
        KeyManagerFactory keys = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        keys.init(store, "pw".toCharArray());
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(keys.getKeyManagers(), null, null);
        return (SSLServerSocket) context.getServerSocketFactory().createServerSocket(0, 1, InetAddress.getLoopbackAddress());
    }

    /** Connects as the phone to loopback under the name {@code host}; returns the byte the broker wrote after the handshake. */
    private int phone(SSLServerSocket server, String host, X509Certificate ca, boolean checkName) throws Exception {
        Future<?> accepted = executor.submit(() -> {
            try (SSLSocket socket = (SSLSocket) server.accept()) {
                socket.startHandshake();
                socket.getOutputStream().write(42);
                socket.getOutputStream().flush();
            } catch (Exception e) {
                // The phone hung up: what a refused broker sees.
            }
            return null;
        });
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(null, new TrustManager[] {new PinnedTrustManager(TestCerts.fingerprint("ca"), ca)}, null);
        Socket plain = new Socket(InetAddress.getLoopbackAddress(), server.getLocalPort());
        try (SSLSocket socket = (SSLSocket) context.getSocketFactory().createSocket(plain, host, server.getLocalPort(), true)) {
            if (checkName) {
                SSLParameters parameters = socket.getSSLParameters();
                parameters.setEndpointIdentificationAlgorithm("HTTPS");
                socket.setSSLParameters(parameters);
            }
            socket.setSoTimeout(10_000);
            socket.startHandshake();
            return socket.getInputStream().read();
        } finally {
            accepted.get(10, TimeUnit.SECONDS);
            server.close();
        }
    }

    private void refused(String reasonPart, String host, X509Certificate ca, boolean checkName, String leaf, String... chain) throws Exception {
        try {
            phone(broker(leaf, chain), host, ca, checkName);
            fail("connected to " + String.join(",", chain) + " as " + host);
        } catch (SSLHandshakeException e) {
            String cause = String.valueOf(e.getCause());
            assertTrue(cause, cause.contains("untrusted broker"));
            assertTrue(cause + " should say " + reasonPart, cause.contains(reasonPart));
        }
    }

    @Test
    public void connectsToTheBrokerOfThePinnedCaUnderEveryNameItsCertificateCarries() throws Exception {
        for (String host : new String[] {"localhost", "127.0.0.1", "::1"}) {
            assertEquals(host, 42, phone(broker("server", "server", "ca"), host, null, true));
        }
    }

    @Test
    public void connectsWhenTheBrokerPresentsOnlyItsCertificateAndTheCaWasLoaded() throws Exception {
        assertEquals(42, phone(broker("server", "server"), "127.0.0.1", TestCerts.cert("ca"), true));
    }

    @Test
    public void connectsThroughAnIntermediate() throws Exception {
        assertEquals(42, phone(broker("via-intermediate", "via-intermediate", "intermediate", "ca"), "localhost", null, true));
    }

    @Test
    public void hangsUpOnABrokerOfAnotherCaBeforeSendingAnything() throws Exception {
        refused("", "localhost", null, true, "rogue-server", "rogue-server", "rogue-ca", "ca");
        refused("", "localhost", TestCerts.cert("ca"), true, "rogue-server", "rogue-server", "rogue-ca");
    }

    @Test
    public void hangsUpWhenTheNameIsWrong() throws Exception {
        refused("", "gateway.example.com", null, true, "server", "server", "ca");
        refused("", "10.0.0.1", null, true, "server", "server", "ca");
    }

    @Test
    public void wildcardsCoverOneLabelOnly() throws Exception {
        assertEquals(42, phone(broker("wildcard", "wildcard", "ca"), "mqtt.example.test", null, true));
        refused("", "a.b.example.test", null, true, "wildcard", "wildcard", "ca");
        refused("", "example.test", null, true, "wildcard", "wildcard", "ca");
    }

    @Test
    public void refusesAConnectionThatDoesNotCheckTheHostName() throws Exception {
        refused("does not check the host name", "localhost", null, false, "server", "server", "ca");
    }
}
