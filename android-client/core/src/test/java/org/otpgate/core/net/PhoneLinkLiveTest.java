package org.otpgate.core.net;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertSame;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.File;
import java.io.IOException;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.SSLSocketFactory;
import org.json.JSONArray;
import org.json.JSONObject;
import org.junit.After;
import org.junit.AfterClass;
import org.junit.BeforeClass;
import org.junit.Test;
import org.otpgate.core.DeviceStatus;
import org.otpgate.core.Fingerprints;
import org.otpgate.core.Pem;
import org.otpgate.core.Provisioning;

/**
 * The core's network stack (PhoneStack: ledger, engine, outbox, PhoneLink on
 * Paho 1.2.5) against a real gateway process on loopback, the way a phone is
 * provisioned and used: provisioning URI from POST /v1/devices → CA fetched
 * from its {@code ca} URL and pinned → TLS → jobs → acks → the OTP verifies.
 * The radio is a fake that counts every send per job id.
 */
public class PhoneLinkLiveTest {
    private static final long WAIT_MS = 15_000;
    private static LiveGateway gateway;

    private final List<PhoneStack> phones = new ArrayList<>();
    private final List<File> dirs = new ArrayList<>();
    private final FakeRadio radio = new FakeRadio();
    /** Every job payload the phones saw, by job id: what "arrives once" is asserted on. */
    private final Map<String, AtomicInteger> arrivals = new ConcurrentHashMap<>();
    private final Map<String, AtomicInteger> cancels = new ConcurrentHashMap<>();
    private final List<String> states = new CopyOnWriteArrayList<>();
    /** The gateway this test talks to: the shared one, or the restart test's own. */
    private LiveGateway gw = gateway;
    private final List<AutoCloseable> extra = new ArrayList<>();

    @BeforeClass
    public static void startGateway() throws Exception {
        Map<String, String> env = new HashMap<>();
        // Short enough that the cancel test sees the gateway give up on a job the phone holds back.
        env.put("DEVICE_ACK_TIMEOUT_MS", "5000");
        env.put("DEVICE_SENT_TIMEOUT_MS", "3000");
        gateway = LiveGateway.start(env);
    }

    @AfterClass
    public static void stopGateway() throws Exception {
        if (gateway != null) gateway.close();
    }

    @After
    public void stopPhones() throws Exception {
        for (PhoneStack phone : phones) {
            try {
                phone.stop(5_000);
            } catch (Exception ignored) {
                // already gone (crashed on purpose)
            }
        }
        radio.close();
        for (AutoCloseable resource : extra) resource.close();
        for (File dir : dirs) LiveGateway.deleteTree(dir);
    }

    // --- the tests ------------------------------------------------------------------

    @Test
    public void provisionedPhoneSendsAnOtpThatVerifiesAndAcksReceivedSentDelivered() throws Exception {
        Provisioning provisioning = provision("live-otp");
        X509Certificate ca = PinnedCa.fetch(provisioning.caUrl, provisioning.caFingerprint);
        assertEquals(provisioning.caFingerprint, Fingerprints.of(ca));
        PhoneStack phone = startPhone(provisioning, ca, newDir(), 20, liveOptions());
        // The old app's defect: a network callback asking to reconnect while Paho is still connecting
        // (32110), then a retry forcing a disconnect (32100). Here both requests meet the attempt under way.
        phone.link().onNetworkChanged();
        phone.link().onNetworkAvailable("network-1");
        awaitReady(phone, provisioning.deviceId);

        // registerDefaultNetworkCallback calls onAvailable at once for the network in use: nothing may happen.
        int connectsBefore = count(states, "CONNECTING");
        phone.link().onNetworkAvailable("network-1");
        phone.link().onNetworkAvailable("network-1");
        Thread.sleep(300);
        assertEquals(PhoneLink.State.CONNECTED, phone.link().state());
        assertEquals("no reconnect for the network already in use", connectsBefore, count(states, "CONNECTING"));

        String otp = requestOtp("+254711000101");
        String id = awaitJobTo("+254711000101");
        String code = codeOf(id);
        awaitDelivery("/v1/otp/" + otp, "delivered");
        JSONObject verified = gw.post("/v1/otp/verify", new JSONObject().put("id", otp).put("code", code)).json();
        assertTrue(verified.toString(), verified.getBoolean("valid"));
        assertEquals("approved", verified.getString("status"));
        Thread.sleep(300);
        assertEquals("sends of " + id, 1, radio.sends(id));
        assertEquals("payloads of " + id, 1, arrivals(id));
        assertEquals("the outbox is empty once the broker has every ack", 0, phone.outbox.size());
        assertEquals("one connection, never dropped: " + states, 1, count(states, "CONNECTED"));
        assertEquals(states.toString(), 0, count(states, "WAITING_TO_RETRY"));
    }

    @Test
    public void wrongPinIsRefusedBeforeAnyCredentialLeavesThePhone() throws Exception {
        Provisioning provisioning = provision("live-wrong-pin");
        String rogueFp = Fingerprints.normalize(new String(new char[64]).replace('\0', 'a'));
        // 1. The CA the gateway serves does not have the pinned fingerprint: not kept.
        try {
            PinnedCa.fetch(provisioning.caUrl, rogueFp);
            fail("kept a CA that does not match the pin");
        } catch (CertificateException expected) {
            assertTrue(expected.getMessage(), expected.getMessage().contains("pinned"));
        }
        // 2. A phone pinned to another CA (the tests' own) refuses the gateway's TLS certificate.
        X509Certificate otherCa = testCa();
        Provisioning pinnedElsewhere = Provisioning.parse(
                uriWith(provisioning, "fp", Fingerprints.of(otherCa)));
        PhoneStack phone = startPhone(pinnedElsewhere, otherCa, newDir(), 20, liveOptions());
        await(() -> phone.link().state() == PhoneLink.State.REFUSED, "the link to be refused");
        assertTrue(phone.link().detail(), phone.link().detail().contains("untrusted broker"));
        // 3. No CA loaded and a pin the broker's chain does not carry: refused too.
        Provisioning noCa = Provisioning.parse(uriWith(provisioning, "fp", rogueFp));
        PhoneStack second = startPhone(noCa, null, newDir(), 20, liveOptions());
        await(() -> second.link().state() == PhoneLink.State.REFUSED, "the second link to be refused");
        assertTrue(second.link().detail(), second.link().detail().contains("pinned CA fingerprint"));
        Thread.sleep(500);
        assertEquals(0, count(states, "CONNECTED"));
        assertEquals("nothing was sent", 0, radio.totalSends());
        assertFalse("the gateway never saw the device", gw.get("/v1/devices/" + provisioning.deviceId).json().getBoolean("online"));
    }

    @Test
    public void severalBrokersMoveOnToTheNextWhenOneIsUnreachable() throws Exception {
        Provisioning provisioning = provision("live-two-brokers");
        int dead = LiveGateway.freePort(); // nothing listens there
        String uri = provisioningUri(provisioning).replace("mqtt=", "mqtt=" + enc("mqtts://127.0.0.1:" + dead) + "&mqtt=");
        Provisioning two = Provisioning.parse(uri);
        assertEquals(2, two.mqttUrls.size());
        X509Certificate ca = PinnedCa.fetch(two.caUrl, two.caFingerprint);
        PhoneStack phone = startPhone(two, ca, newDir(), 20, liveOptions());
        awaitReady(phone, two.deviceId);
        assertEquals("ssl://127.0.0.1:" + gw.mqttsPort, phone.link().detail());
        String id = sendMessage("+254711000102", "two brokers");
        await(() -> radio.sends(id) == 1, "the message to be sent");
        awaitDelivery("/v1/messages/" + id, "delivered");
        assertEquals(1, radio.sends(id));

        // Wi-Fi → LTE: the first report is the network in use (nothing happens), the second a real change
        // (the old socket is replaced at once, with a DISCONNECT, not left to the keepalive).
        phone.link().onNetworkAvailable("wifi");
        Thread.sleep(200);
        assertEquals(states.toString(), 1, count(states, "CONNECTED"));
        phone.link().onNetworkAvailable("lte");
        await(() -> count(states, "CONNECTED") == 2, "the link to reconnect on the new network");
        awaitOnline(two.deviceId);
        String after = sendMessage("+254711000108", "after the network change");
        await(() -> radio.sends(after) == 1, "a message after the network change");
        Thread.sleep(300);
        assertEquals(1, radio.sends(after));
        assertEquals(states.toString(), 0, count(states, "WAITING_TO_RETRY"));
    }

    private static final class SecondJobQueued {
        Provisioning provisioning;
        X509Certificate ca;
        PhoneStack phone;
        String first;
        String second;
    }

    /** A phone allowed one SMS a minute that sent a first message and has received a second, which waits for the window. */
    private SecondJobQueued secondJobQueued(String name, String firstNumber, String secondNumber) throws Exception {
        Provisioning provisioning = provision(name);
        X509Certificate ca = PinnedCa.fetch(provisioning.caUrl, provisioning.caFingerprint);
        SecondJobQueued queued = new SecondJobQueued();
        queued.provisioning = provisioning;
        queued.ca = ca;
        queued.phone = startPhone(provisioning, ca, newDir(), 1, liveOptions());
        awaitReady(queued.phone, provisioning.deviceId);
        queued.first = sendMessage(firstNumber, "first");
        await(() -> radio.sends(queued.first) == 1, "the first message to be sent");
        queued.second = sendMessage(secondNumber, "second");
        await(() -> arrivals(queued.second) >= 1, "the second job to reach the phone");
        return queued;
    }

    @Test
    public void cancelIsHonouredForAJobStillWaitingForTheSendWindow() throws Exception {
        // The gateway's sent timeout (3 s) runs out for the queued job, it takes the job back with a
        // cancel, and the phone must not send it later.
        SecondJobQueued queued = secondJobQueued("live-cancel", "+254711000103", "+254711000104");
        PhoneStack phone = queued.phone;
        String first = queued.first;
        String second = queued.second;
        await(() -> cancels(second) >= 1, "the gateway's cancel for the second job");
        await(() -> "failed".equals(status("/v1/messages/" + second)), "the gateway to give the second job up");
        await(() -> phone.engine.status().queued == 0, "the phone to drop the cancelled job");
        String lastError = phone.engine.status().lastError;
        assertTrue(lastError, lastError.contains("CANCELLED") && lastError.contains(second));
        Thread.sleep(500);
        assertEquals("sends of the first job", 1, radio.sends(first));
        assertEquals("sends of the cancelled job", 0, radio.sends(second));
    }

    /**
     * The user's Stop while a job waits for the send window (one SMS a minute). Before, the engine kept it, and the
     * window reopening later sent it although the gateway had long failed it over: the code twice. Stopped while the
     * link is down, the failed ack waits in the outbox and reaches the gateway on the next connection.
     */
    @Test
    public void stopFailsAJobWaitingForTheSendWindowAndTheGatewayHearsItOnReconnect() throws Exception {
        SecondJobQueued queued = secondJobQueued("live-stop", "+254711000109", "+254711000110");
        PhoneStack phone = queued.phone;
        String first = queued.first;
        String second = queued.second;
        await(() -> phone.engine.status().queued == 1, "the second job to wait for the send window");

        // A lost link is not a stop: the job stays queued.
        assertTrue(phone.disconnect(5_000));
        assertEquals(1, phone.engine.status().queued);
        assertTrue(phone.stopSending(5_000));
        assertEquals(0, phone.engine.status().queued);
        assertTrue(phone.outbox.pending().toString(), phone.outbox.pending().toString().contains(second + " failed STOPPED"));
        // What would have sent it: the window reopening (the engine's timer) and the app's restart for a new rate.
        phone.engine.pump();
        phone.engine.setMaxPerMinute(30);
        assertFalse("the gateway cannot have heard it while the phone is away", gatewaySawStopped(second));

        PhoneLink.Options options = liveOptions();
        options.log = line -> System.err.println("phone " + queued.provisioning.deviceId + ": " + line);
        phone.connect(queued.provisioning, queued.ca, options);
        await(() -> gatewaySawStopped(second), "the gateway to record the STOPPED ack of the second job");
        await(() -> phone.outbox.size() == 0, "the broker to take every waiting ack");
        Thread.sleep(300);
        assertEquals("sends of the job failed on stop", 0, radio.sends(second));
        assertEquals("sends of the first job", 1, radio.sends(first));
    }

    @Test
    public void aClientRestartWithFilePersistenceNeverSendsAJobTwice() throws Exception {
        Provisioning provisioning = provision("live-restart");
        X509Certificate ca = PinnedCa.fetch(provisioning.caUrl, provisioning.caFingerprint);
        File dir = newDir();
        // First run: takes the job, hands it to the radio, and dies before the PUBACK leaves the phone
        // (its sockets are cut inside the message callback), so the broker must deliver the job again.
        List<Socket> sockets = new CopyOnWriteArrayList<>();
        PhoneLink.Options cutting = liveOptions();
        cutting.sockets = factory -> new RecordingSockets(factory, sockets);
        cutting.minBackoffMs = 10_000; // no reconnect of its own before the "crash" below
        cutting.maxBackoffMs = 10_000;
        radio.reporting = false;
        PhoneStack first = startPhone(provisioning, ca, dir, 20, cutting, payload -> {
            for (Socket socket : sockets) {
                try {
                    socket.close();
                } catch (IOException ignored) {
                    // closing is all we want
                }
            }
        });
        awaitReady(first, provisioning.deviceId);
        requestOtp("+254711000105");
        String id = awaitJobTo("+254711000105");
        assertEquals(1, radio.sends(id));
        first.crash(5_000);
        phones.remove(first);

        // Second run: same folder (ledger, outbox, Paho's file persistence), results reported again.
        radio.reporting = true;
        int before = arrivals(id);
        PhoneStack second = startPhone(provisioning, ca, dir, 20, liveOptions());
        await(() -> arrivals(id) > before, "the broker to deliver the unacknowledged job again");
        assertEquals("payloads of " + id + ": the first delivery and the redelivery", 2, arrivals(id));
        Thread.sleep(800);
        assertEquals("sends of " + id + " across both runs", 1, radio.sends(id));
        // The restarted phone still works: a new job goes out once.
        String next = sendMessage("+254711000106", "after the restart");
        await(() -> radio.sends(next) == 1, "a new job after the restart");
        awaitDelivery("/v1/messages/" + next, "delivered");
        assertEquals(1, radio.sends(next));
        assertEquals(1, radio.sends(id));
    }

    /**
     * Against a gateway on Redis: its broker's sessions and offline queues live in Redis, so they outlive
     * the process. (On SQLite alone the broker keeps sessions in memory: a job routed while a phone is
     * reconnecting to a restarted gateway is not queued and waits for DEVICE_ACK_TIMEOUT_MS.)
     */
    @Test
    public void brokerRestartReconnectsAndTheQueuedJobArrivesOnce() throws Exception {
        LiveRedis redis = LiveRedis.start();
        extra.add(redis);
        Map<String, String> env = new HashMap<>();
        env.put("STORE", "redis");
        env.put("REDIS_URL", redis.url());
        env.put("DEVICE_ACK_TIMEOUT_MS", "10000");
        LiveGateway onRedis = LiveGateway.start(env);
        extra.add(0, onRedis); // closed before Redis
        gw = onRedis;
        Provisioning provisioning = provision("live-broker-restart");
        X509Certificate ca = PinnedCa.fetch(provisioning.caUrl, provisioning.caFingerprint);
        PhoneStack phone = startPhone(provisioning, ca, newDir(), 20, liveOptions());
        awaitReady(phone, provisioning.deviceId);
        System.err.println(System.currentTimeMillis() + " restarting the gateway");
        gw.restart(); // SIGKILL, then the same DATA_DIR, ports and Redis
        System.err.println(System.currentTimeMillis() + " gateway ready");
        // Requested at once: the phone is still waiting out its backoff, so the job waits in its session.
        String otp = requestOtp("+254711000107");
        System.err.println(System.currentTimeMillis() + " requested OTP " + otp + " while the link is " + phone.link().state());
        String id = awaitJobTo("+254711000107");
        String code = codeOf(id);
        // The queued job comes right after the CONNACK, before the SUBACK that completes the reconnect.
        await(() -> count(states, "CONNECTED") >= 2, "the link to report the reconnection");
        JSONObject verified = gw.post("/v1/otp/verify", new JSONObject().put("id", otp).put("code", code)).json();
        assertTrue(verified.toString(), verified.getBoolean("valid"));
        awaitDelivery("/v1/otp/" + otp, "delivered");
        Thread.sleep(500);
        assertEquals("sends of " + id, 1, radio.sends(id));
        assertEquals("payloads of " + id, 1, arrivals(id));
    }

    /**
     * The heartbeat is a wakeup like the back-off: on the phone an alarm, which Doze honours, never a Java timer
     * of the link's own, whose clock stops in deep sleep. With wakeups that only record (given to the stack as the
     * app gives its alarms), the gateway sees no status after the connection's until the test fires the
     * heartbeat's request, and then it sees the next one.
     */
    @Test
    public void heartbeatReachesTheGatewayOnlyWhenItsWakeupFires() throws Exception {
        Provisioning provisioning = provision("live-heartbeat");
        PhoneLinkWakeupsTest.FakeWakeups wakeups = new PhoneLinkWakeupsTest.FakeWakeups();
        AtomicInteger published = new AtomicInteger();
        // Short, so that a heartbeat on a timer of the link's own would go out several times during the wait below.
        long heartbeatMs = 350;
        // The battery counts the statuses built, so the gateway's view of the device tells them apart.
        readyPhoneOnWakeups(provisioning, wakeups, heartbeatMs, () -> DeviceStatus.online(40 + published.getAndIncrement(), 3,
                Collections.emptyList(), "otpgate live test", System.currentTimeMillis()));
        await(() -> reportedBattery(provisioning.deviceId) == 40, "the connection's status to reach the gateway");
        await(() -> requestsOf(wakeups, heartbeatMs).size() == 1, "the heartbeat to ask for its wakeup");

        Thread.sleep(5 * heartbeatMs);
        assertEquals("statuses built before the heartbeat's wakeup fired", 1, published.get());
        assertEquals("the gateway still shows the connection's status", 40, reportedBattery(provisioning.deviceId));
        assertEquals(1, requestsOf(wakeups, heartbeatMs).size());

        PhoneLinkWakeupsTest.FakeWakeups.Request heartbeat = requestsOf(wakeups, heartbeatMs).get(0);
        assertFalse(heartbeat.cancelled);
        heartbeat.task.run();
        await(() -> reportedBattery(provisioning.deviceId) == 41, "the heartbeat's status to reach the gateway");
        assertEquals(2, published.get());
        // One-shot and asked for again, through the wakeups as well.
        await(() -> requestsOf(wakeups, heartbeatMs).size() == 2, "the next heartbeat to ask for its wakeup");
        assertEquals(states.toString(), 1, count(states, "CONNECTED"));
    }

    /**
     * The status is built from system services (battery, signal, SIMs), which can throw on a phone. Such a throw
     * costs that one status, not the connection: the link still reports CONNECTED, and the next heartbeat publishes.
     */
    @Test
    public void aStatusThatCannotBeBuiltDoesNotKeepTheLinkFromComingOnline() throws Exception {
        Provisioning provisioning = provision("live-status-throws");
        PhoneLinkWakeupsTest.FakeWakeups wakeups = new PhoneLinkWakeupsTest.FakeWakeups();
        AtomicInteger asked = new AtomicInteger();
        long heartbeatMs = 450;
        readyPhoneOnWakeups(provisioning, wakeups, heartbeatMs, () -> {
            if (asked.getAndIncrement() == 0) throw new SecurityException("READ_PHONE_STATE was revoked");
            return DeviceStatus.online(55, 3, Collections.emptyList(), "otpgate live test", System.currentTimeMillis());
        });
        assertEquals(1, asked.get());
        await(() -> requestsOf(wakeups, heartbeatMs).size() == 1, "the heartbeat to ask for its wakeup");
        requestsOf(wakeups, heartbeatMs).get(0).task.run();
        await(() -> reportedBattery(provisioning.deviceId) == 55, "the heartbeat's status to reach the gateway");
    }

    // --- helpers --------------------------------------------------------------------

    private Provisioning provision(String name) throws Exception {
        LiveGateway.Reply created = gw.post("/v1/devices", new JSONObject().put("name", name));
        assertEquals(created.body, 201, created.status);
        return Provisioning.parse(created.json().getString("provisioning"));
    }

    /** Short delays, so a refused or cut connection is tried again within a test's patience. */
    private static PhoneLink.Options liveOptions() {
        PhoneLink.Options options = new PhoneLink.Options();
        options.minBackoffMs = 200;
        options.maxBackoffMs = 1_000;
        options.refusedRetryMs = 5_000;
        options.connectTimeoutSeconds = 5;
        return options;
    }

    /** The fake radio, a fixed online status, and every state and payload recorded for the assertions. */
    private PhoneStack.Setup setup(String deviceId, int maxPerMinute, Consumer<byte[]> extra) {
        PhoneStack.Setup setup = new PhoneStack.Setup();
        setup.radio = radio;
        setup.onlineStatus = () -> DeviceStatus.online(90, 3, Collections.emptyList(), "otpgate live test", System.currentTimeMillis());
        setup.maxPerMinute = maxPerMinute;
        setup.log = line -> System.err.println("engine " + deviceId + ": " + line);
        setup.onState = (state, detail) -> {
            states.add(state.name());
            System.err.println(System.currentTimeMillis() + " phone " + deviceId + ": " + state + " " + detail);
        };
        setup.onPayload = payload -> {
            countArrival(payload);
            extra.accept(payload);
        };
        return setup;
    }

    private PhoneStack startPhone(Provisioning provisioning, X509Certificate ca, File dir, int maxPerMinute, PhoneLink.Options options)
            throws Exception {
        return startPhone(provisioning, ca, dir, maxPerMinute, options, payload -> { });
    }

    /** {@code extra} runs on Paho's thread after the engine took the payload, before the PUBACK. */
    private PhoneStack startPhone(Provisioning provisioning, X509Certificate ca, File dir, int maxPerMinute, PhoneLink.Options options,
                                  Consumer<byte[]> extra) throws Exception {
        return startPhone(provisioning, ca, dir, setup(provisioning.deviceId, maxPerMinute, extra), options);
    }

    private PhoneStack startPhone(Provisioning provisioning, X509Certificate ca, File dir, PhoneStack.Setup setup, PhoneLink.Options options)
            throws Exception {
        options.log = line -> System.err.println("phone " + provisioning.deviceId + ": " + line);
        PhoneStack phone = PhoneStack.open(dir, setup);
        radio.engine = phone.engine;
        phones.add(phone);
        phone.connect(provisioning, ca, options);
        return phone;
    }

    /** A phone whose every timer is a request in {@code wakeups} (as the app's are alarms), connected and subscribed. */
    private PhoneStack readyPhoneOnWakeups(Provisioning provisioning, PhoneLinkWakeupsTest.FakeWakeups wakeups, long heartbeatMs,
                                           Supplier<String> onlineStatus) throws Exception {
        X509Certificate ca = PinnedCa.fetch(provisioning.caUrl, provisioning.caFingerprint);
        PhoneStack.Setup setup = setup(provisioning.deviceId, 20, payload -> { });
        setup.onlineStatus = onlineStatus;
        setup.wakeups = wakeups;
        PhoneLink.Options options = liveOptions();
        options.heartbeatMs = heartbeatMs;
        PhoneStack phone = startPhone(provisioning, ca, newDir(), setup, options);
        assertSame("the stack hands its wakeups to the link", wakeups, options.wakeups);
        awaitReady(phone, provisioning.deviceId);
        return phone;
    }

    private static List<PhoneLinkWakeupsTest.FakeWakeups.Request> requestsOf(PhoneLinkWakeupsTest.FakeWakeups wakeups, long delayMs) {
        List<PhoneLinkWakeupsTest.FakeWakeups.Request> matching = new ArrayList<>();
        for (PhoneLinkWakeupsTest.FakeWakeups.Request request : wakeups.requests) {
            if (request.delayMs == delayMs) matching.add(request);
        }
        return matching;
    }

    /** The battery of the last status the gateway recorded for the device, or -1. */
    private int reportedBattery(String deviceId) {
        try {
            JSONObject presence = gw.get("/v1/devices/" + deviceId).json().optJSONObject("presence");
            return presence == null ? -1 : presence.optInt("battery", -1);
        } catch (IOException e) {
            return -1;
        }
    }

    private File newDir() throws IOException {
        File dir = Files.createTempDirectory("otpgate-phone-").toFile();
        dirs.add(dir);
        return dir;
    }

    private int arrivals(String id) {
        AtomicInteger count = arrivals.get(id);
        return count == null ? 0 : count.get();
    }

    private static final Pattern ID = Pattern.compile("\"id\"\\s*:\\s*\"([^\"]+)\"");

    /** Every payload any phone receives, counted by job id: jobs in {@code arrivals}, cancels in {@code cancels}. */
    void countArrival(byte[] payload) {
        String text = new String(payload, StandardCharsets.UTF_8);
        Matcher m = ID.matcher(text);
        if (!m.find()) return;
        Map<String, AtomicInteger> counts = text.contains("\"cancel\":true") ? cancels : arrivals;
        counts.computeIfAbsent(m.group(1), k -> new AtomicInteger()).incrementAndGet();
    }

    private int cancels(String id) {
        AtomicInteger count = cancels.get(id);
        return count == null ? 0 : count.get();
    }

    private String requestOtp(String to) throws Exception {
        LiveGateway.Reply reply = gw.post("/v1/otp", new JSONObject().put("to", to).put("channel", "sms"));
        assertEquals(reply.body, 202, reply.status);
        return reply.json().getString("id");
    }

    private String sendMessage(String to, String body) throws Exception {
        LiveGateway.Reply reply = gw.post("/v1/messages", new JSONObject().put("to", to).put("body", body));
        assertEquals(reply.body, 202, reply.status);
        return reply.json().getString("id");
    }

    /** The id of the job the phone sent to {@code to} (an OTP's job id is not the OTP's id). */
    private String awaitJobTo(String to) throws Exception {
        await(() -> radio.jobSentTo(to) != null, "the phone to send a job to " + to);
        return radio.jobSentTo(to);
    }

    private String codeOf(String jobId) {
        String body = radio.body(jobId);
        assertNotNull(body);
        Matcher digits = Pattern.compile("\\b(\\d{4,10})\\b").matcher(body);
        assertTrue("no code in the SMS", digits.find());
        return digits.group(1);
    }

    private String status(String path) {
        try {
            return gw.get(path).json().optString("status");
        } catch (IOException e) {
            return null;
        }
    }

    /**
     * The gateway holds the phone's {@code failed STOPPED} ack for message {@code id}: acted on (the attempt's error),
     * or recorded as late when its own sent timeout had given the attempt up first.
     */
    private boolean gatewaySawStopped(String id) {
        try {
            JSONObject delivery = gw.get("/v1/messages/" + id).json().optJSONObject("delivery");
            JSONArray attempts = delivery == null ? null : delivery.optJSONArray("attempts");
            for (int i = 0; attempts != null && i < attempts.length(); i++) {
                JSONObject attempt = attempts.optJSONObject(i);
                if (attempt == null) continue;
                JSONObject late = attempt.optJSONObject("late");
                if (attempt.optString("error").startsWith("device:STOPPED")) return true;
                if (late != null && "failed".equals(late.optString("status")) && "STOPPED".equals(late.optString("error"))) return true;
            }
            return false;
        } catch (IOException e) {
            return false;
        }
    }

    private void awaitDelivery(String path, String state) throws Exception {
        await(() -> {
            try {
                JSONObject view = gw.get(path).json();
                return view.toString().contains("\"" + state + "\"");
            } catch (IOException e) {
                return false;
            }
        }, path + " to reach " + state);
    }

    /**
     * The link subscribed and announced itself, and the gateway shows the device online. The gateway's
     * "online" alone comes at CONNECT, before the SUBSCRIBE: a job routed in between is lost.
     */
    private void awaitReady(PhoneStack phone, String deviceId) throws Exception {
        await(() -> phone.link().state() == PhoneLink.State.CONNECTED, "the link to be connected and subscribed");
        awaitOnline(deviceId);
    }

    private void awaitOnline(String deviceId) throws Exception {
        await(() -> {
            try {
                return gw.get("/v1/devices/" + deviceId).json().optBoolean("online");
            } catch (IOException e) {
                return false;
            }
        }, "device " + deviceId + " to be online");
    }

    private void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.currentTimeMillis() + WAIT_MS;
        while (!condition.getAsBoolean()) {
            if (System.currentTimeMillis() > deadline) {
                fail("timed out after " + WAIT_MS + " ms waiting for " + what + "\ngateway output:\n" + gw.output());
            }
            Thread.sleep(50);
        }
    }

    private static int count(List<String> list, String value) {
        int n = 0;
        for (String item : list) if (item.equals(value)) n++;
        return n;
    }

    private static String enc(String value) throws Exception {
        return java.net.URLEncoder.encode(value, "UTF-8");
    }

    private static String provisioningUri(Provisioning p) throws Exception {
        StringBuilder uri = new StringBuilder("otpgate://provision?v=1");
        for (String url : p.mqttUrls) uri.append("&mqtt=").append(enc(url));
        uri.append("&id=").append(enc(p.deviceId)).append("&token=").append(enc(p.token)).append("&fp=").append(enc(p.caFingerprint));
        if (p.caUrl != null) uri.append("&ca=").append(enc(p.caUrl));
        return uri.toString();
    }

    private static String uriWith(Provisioning p, String name, String value) throws Exception {
        return provisioningUri(p).replaceAll("&" + name + "=[^&]*", "&" + name + "=" + enc(value));
    }

    /** The CA of the unit tests (make-certs.sh), which did not sign the gateway's certificate. */
    private static X509Certificate testCa() throws Exception {
        String dir = System.getProperty("otpgate.certs");
        assertNotNull("-Dotpgate.certs is not set", dir);
        String pem = new String(Files.readAllBytes(new File(dir, "ca.pem").toPath()), StandardCharsets.UTF_8);
        return Pem.certificates(pem).get(0);
    }

    /** Paho's socket factory, recording the sockets it makes so a test can cut them as a dying process would. */
    static final class RecordingSockets extends SSLSocketFactory {
        private final SSLSocketFactory inner;
        private final List<Socket> made;

        RecordingSockets(SSLSocketFactory inner, List<Socket> made) {
            this.inner = inner;
            this.made = made;
        }

        private Socket keep(Socket socket) {
            made.add(socket);
            return socket;
        }

        @Override
        public Socket createSocket() throws IOException {
            return keep(inner.createSocket());
        }

        @Override
        public Socket createSocket(Socket s, String host, int port, boolean autoClose) throws IOException {
            return keep(inner.createSocket(s, host, port, autoClose));
        }

        @Override
        public Socket createSocket(String host, int port) throws IOException {
            return keep(inner.createSocket(host, port));
        }

        @Override
        public Socket createSocket(String host, int port, InetAddress localHost, int localPort) throws IOException {
            return keep(inner.createSocket(host, port, localHost, localPort));
        }

        @Override
        public Socket createSocket(InetAddress host, int port) throws IOException {
            return keep(inner.createSocket(host, port));
        }

        @Override
        public Socket createSocket(InetAddress address, int port, InetAddress localAddress, int localPort) throws IOException {
            return keep(inner.createSocket(address, port, localAddress, localPort));
        }

        @Override
        public String[] getDefaultCipherSuites() {
            return inner.getDefaultCipherSuites();
        }

        @Override
        public String[] getSupportedCipherSuites() {
            return inner.getSupportedCipherSuites();
        }
    }
}
