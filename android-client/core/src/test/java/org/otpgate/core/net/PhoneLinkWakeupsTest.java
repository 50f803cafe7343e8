package org.otpgate.core.net;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.Test;
import org.otpgate.core.AckOutbox;
import org.otpgate.core.Provisioning;
import org.otpgate.core.TextStore;

/**
 * The link's delays go through the injected {@link Wakeups} (on the phone: alarms, which Doze honours), never a
 * Java timer of its own: a broker that refuses the connection makes the link ask for the back-off delay, and only
 * firing that wakeup makes the next attempt.
 */
public class PhoneLinkWakeupsTest {
    /** Records every request; a test fires them by hand. */
    static final class FakeWakeups implements Wakeups {
        static final class Request {
            final Runnable task;
            final long delayMs;
            volatile boolean cancelled;

            Request(Runnable task, long delayMs) {
                this.task = task;
                this.delayMs = delayMs;
            }
        }

        final List<Request> requests = new CopyOnWriteArrayList<>();

        @Override
        public Pending schedule(Runnable task, long delayMs) {
            Request request = new Request(task, delayMs);
            requests.add(request);
            return () -> request.cancelled = true;
        }
    }

    private static String cert(String name) throws Exception {
        String dir = System.getProperty("otpgate.certs");
        if (dir == null) throw new IllegalStateException("-Dotpgate.certs is not set (scripts/jvm-test.sh sets it)");
        return new String(Files.readAllBytes(new File(dir, name).toPath()), StandardCharsets.UTF_8);
    }

    private static final class MemoryStore implements TextStore {
        private String text;

        @Override
        public String read() {
            return text;
        }

        @Override
        public void write(String text) {
            this.text = text;
        }
    }

    @Test
    public void retriesARefusedConnectionOnlyWhenTheInjectedWakeupFires() throws Exception {
        int port;
        try (ServerSocket probe = new ServerSocket(0)) {
            port = probe.getLocalPort(); // closed again: connecting to it is refused at once
        }
        String fp = cert("ca.fingerprint").trim();
        X509Certificate ca = PinnedCa.fromPem(cert("ca.pem"), fp);
        Provisioning provisioning = Provisioning.parse(
                "otpgate://provision?v=1&mqtt=mqtts://127.0.0.1:" + port + "&id=dev_wake&token=t&fp=" + fp);

        FakeWakeups wakeups = new FakeWakeups();
        List<PhoneLink.State> states = new CopyOnWriteArrayList<>();
        PhoneLink.Options options = new PhoneLink.Options();
        options.minBackoffMs = 1_000;
        options.maxBackoffMs = 60_000;
        options.connectTimeoutSeconds = 2;
        options.wakeups = wakeups;
        PhoneLink link = new PhoneLink(provisioning, ca, AckOutbox.open(new MemoryStore()), new PhoneLink.Listener() {
            @Override
            public void onStateChanged(PhoneLink.State state, String detail) {
                states.add(state);
            }

            @Override
            public void onJobPayload(byte[] payload) {
            }

            @Override
            public String onlineStatus() {
                return "{\"online\":true}";
            }
        }, options);
        try {
            link.start();
            waitFor(() -> wakeups.requests.size() == 1, "the first back-off request");
            assertEquals(PhoneLink.State.WAITING_TO_RETRY, link.state());
            long first = wakeups.requests.get(0).delayMs;
            assertTrue("first back-off " + first + " ms is 1 s ± 20 %", first >= 800 && first <= 1_200);

            // Longer than the back-off: with no wakeup fired, the link makes no attempt on a clock of its own.
            Thread.sleep(1_500);
            assertEquals(1, count(states, PhoneLink.State.CONNECTING));
            assertEquals(1, wakeups.requests.size());

            wakeups.requests.get(0).task.run();
            waitFor(() -> wakeups.requests.size() == 2, "the second back-off request");
            assertEquals(2, count(states, PhoneLink.State.CONNECTING));
            long second = wakeups.requests.get(1).delayMs;
            assertTrue("second back-off " + second + " ms is 2 s ± 20 %", second >= 1_600 && second <= 2_400);
        } finally {
            link.stop().get(5, TimeUnit.SECONDS);
        }
        // Stopping cancels the pending wakeup, and one that fires anyway (an alarm already delivered) does nothing.
        FakeWakeups.Request pending = wakeups.requests.get(1);
        assertTrue(pending.cancelled);
        pending.task.run();
        assertEquals(2, count(states, PhoneLink.State.CONNECTING));
        assertEquals(PhoneLink.State.STOPPED, link.state());
    }

    private static int count(List<PhoneLink.State> states, PhoneLink.State wanted) {
        int n = 0;
        for (PhoneLink.State state : new ArrayList<>(states)) if (state == wanted) n++;
        return n;
    }

    private static void waitFor(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.currentTimeMillis() + 10_000;
        while (!condition.getAsBoolean()) {
            if (System.currentTimeMillis() > deadline) throw new AssertionError("timed out waiting for " + what);
            Thread.sleep(20);
        }
    }
}
