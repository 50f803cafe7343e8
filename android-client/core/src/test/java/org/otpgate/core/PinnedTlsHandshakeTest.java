package org.otpgate.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.net.InetAddress;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLHandshakeException;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManager;
import org.junit.After;
import org.junit.Test;

/** A real TLS handshake on loopback, the phone's side using only PinnedTrustManager. */
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

    /** Connects as the phone; returns the byte the broker wrote after the handshake. */
    private int phone(SSLServerSocket server, String host, PinnedChainVerifier verifier) throws Exception {
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
        long now = TestCerts.validNow();
        context.init(null, new TrustManager[] {new PinnedTrustManager(verifier, host, () -> now)}, null);
        try (SSLSocket socket = (SSLSocket) context.getSocketFactory().createSocket(InetAddress.getLoopbackAddress(), server.getLocalPort())) {
            socket.setSoTimeout(10_000);
            socket.startHandshake();
            return socket.getInputStream().read();
        } finally {
            accepted.get(10, TimeUnit.SECONDS);
            server.close();
        }
    }

    @Test
    public void connectsToTheBrokerOfThePinnedCa() throws Exception {
        PinnedChainVerifier pin = new PinnedChainVerifier(TestCerts.fingerprint("ca"), null);
        assertEquals(42, phone(broker("server", "server", "ca"), "localhost", pin));
    }

    @Test
    public void connectsWhenTheBrokerPresentsOnlyItsCertificateAndTheCaWasFetched() throws Exception {
        PinnedChainVerifier pin = new PinnedChainVerifier(TestCerts.fingerprint("ca"), TestCerts.cert("ca"));
        assertEquals(42, phone(broker("server", "server"), "127.0.0.1", pin));
    }

    @Test
    public void hangsUpOnABrokerOfAnotherCaBeforeSendingAnything() throws Exception {
        PinnedChainVerifier pin = new PinnedChainVerifier(TestCerts.fingerprint("ca"), null);
        try {
            phone(broker("rogue-server", "rogue-server", "rogue-ca", "ca"), "localhost", pin);
            fail("connected to a rogue broker");
        } catch (SSLHandshakeException e) {
            assertTrue(String.valueOf(e.getCause()), String.valueOf(e.getCause()).contains("untrusted broker"));
        }
    }

    @Test
    public void hangsUpWhenTheNameIsWrong() throws Exception {
        PinnedChainVerifier pin = new PinnedChainVerifier(TestCerts.fingerprint("ca"), null);
        try {
            phone(broker("server", "server", "ca"), "gateway.example.com", pin);
            fail("accepted a certificate for another name");
        } catch (SSLHandshakeException e) {
            assertTrue(String.valueOf(e.getCause()), String.valueOf(e.getCause()).contains("not valid for gateway.example.com"));
        }
    }
}
