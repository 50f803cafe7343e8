package org.otpgate.core.net;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Future;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.UnaryOperator;
import javax.net.ssl.SSLSocketFactory;
import org.eclipse.paho.client.mqttv3.IMqttActionListener;
import org.eclipse.paho.client.mqttv3.IMqttDeliveryToken;
import org.eclipse.paho.client.mqttv3.IMqttToken;
import org.eclipse.paho.client.mqttv3.MqttAsyncClient;
import org.eclipse.paho.client.mqttv3.MqttCallbackExtended;
import org.eclipse.paho.client.mqttv3.MqttClientPersistence;
import org.eclipse.paho.client.mqttv3.MqttConnectOptions;
import org.eclipse.paho.client.mqttv3.MqttException;
import org.eclipse.paho.client.mqttv3.MqttMessage;
import org.eclipse.paho.client.mqttv3.persist.MemoryPersistence;
import org.eclipse.paho.client.mqttv3.persist.MqttDefaultFilePersistence;
import org.otpgate.core.Ack;
import org.otpgate.core.AckOutbox;
import org.otpgate.core.Backoff;
import org.otpgate.core.BrokerAddress;
import org.otpgate.core.DeviceStatus;
import org.otpgate.core.Provisioning;

/**
 * The phone's MQTT connection (Eclipse Paho Java 1.2.5), with no android.*
 * in it: the app runs it inside its foreground service, the live tests run it
 * against a real gateway. The contract of DESIGN.md: client id = username =
 * device id, password = token, cleanSession=false (the broker keeps QoS 1 jobs
 * while the phone is away), keepalive 30 s, a retained will {"online":false}
 * on sms/device/&lt;id&gt;, jobs from sms/out/&lt;id&gt; at QoS 1, acks from
 * the {@link AckOutbox} to sms/ack/&lt;id&gt; at QoS 1.
 *
 * <p>How it avoids dropping its own healthy connection:
 * <ul>
 *   <li>Every state change runs on one thread, and at most one connect is
 *       under way ({@code connecting}): a second request while Paho is still
 *       connecting is dropped, never handed to Paho (which would fail it with
 *       32110 and look like a broken connection).</li>
 *   <li>The retry task is cancelled the moment a connection succeeds, and a
 *       retry that fires anyway finds the client connected and does nothing:
 *       nothing here ever disconnects a working connection because a timer
 *       went off (the old 32100 path, which made the broker publish the will
 *       and the gateway fail jobs over).</li>
 *   <li>A network callback reconnects only when the connection is down, or
 *       when the default network really changed (another network id) while a
 *       socket of the old one lingers; the callback's first onAvailable for
 *       the network already in use does nothing.</li>
 *   <li>Paho's automatic reconnect is off: the core's {@link Backoff} has the
 *       jitter a fleet needs after a broker restart, and the subscription is
 *       renewed by us on every connection.</li>
 * </ul>
 * Several brokers: Paho's serverURIs tries them in order within each attempt,
 * moving to the next when one is unreachable; the one that worked last is
 * tried first next time.
 */
public final class PhoneLink {
    public enum State { STOPPED, CONNECTING, CONNECTED, WAITING_TO_RETRY, REFUSED }

    public interface Listener {
        /** On the link's thread. {@code detail} says why when not connected, or which broker when connected. */
        void onStateChanged(State state, String detail);

        /** On Paho's thread; Paho sends the PUBACK once this returns, so the job must be recorded first. */
        void onJobPayload(byte[] payload);

        /** The retained online status to publish now. */
        String onlineStatus();
    }

    public interface Log {
        /** Lines never carry the token. */
        void line(String text);
    }

    public static final class Options {
        public int keepAliveSeconds = 30;
        public int connectTimeoutSeconds = 15;
        public long heartbeatMs = 60_000;
        public long minBackoffMs = Backoff.DEFAULT_MIN_MS;
        public long maxBackoffMs = Backoff.DEFAULT_MAX_MS;
        /** A refused login or an untrusted broker does not fix itself soon: retried this slowly. */
        public long refusedRetryMs = Backoff.DEFAULT_MAX_MS;
        /** Paho's file persistence (QoS 1 acks in flight survive a restart); null keeps them in memory. */
        public File persistenceDir;
        public Log log = text -> { };
        /** Every delay of the link (back-off, heartbeat); null: the link's own thread, whose clock stops in deep sleep. */
        public Wakeups wakeups;
        /** Tests only: wraps the pinned socket factory (to cut a connection as a crash would). */
        UnaryOperator<SSLSocketFactory> sockets = UnaryOperator.identity();
    }

    private static final int SUBSCRIPTION_REFUSED = 0x80;
    /** Acks waiting after an outage go out together; Paho's default of 10 in flight would refuse the rest. */
    private static final int MAX_INFLIGHT = 200;
    private static final long GOODBYE_TIMEOUT_MS = 3_000;

    private final Provisioning provisioning;
    private final X509Certificate ca;
    private final AckOutbox outbox;
    private final Listener listener;
    private final Options options;
    private final String outTopic;
    private final String ackTopic;
    private final String deviceTopic;
    private final ScheduledExecutorService thread;
    private final Wakeups wakeups;
    /** Outbox keys published and not yet PUBACKed, so a flush does not publish them twice. */
    private final Set<String> publishing = Collections.synchronizedSet(new HashSet<String>());

    // Only touched on `thread`.
    private MqttAsyncClient client;
    private MqttConnectOptions connectOptions;
    private List<String> serverUris;
    private boolean connecting;
    private boolean stopped;
    private int attempt;
    private Wakeups.Pending retry;
    private Wakeups.Pending heartbeat;
    private String network;

    private volatile State state = State.STOPPED;
    private volatile String detail;

    public PhoneLink(Provisioning provisioning, X509Certificate ca, AckOutbox outbox, Listener listener, Options options) {
        this.provisioning = provisioning;
        this.ca = ca;
        this.outbox = outbox;
        this.listener = listener;
        this.options = options;
        this.outTopic = "sms/out/" + provisioning.deviceId;
        this.ackTopic = "sms/ack/" + provisioning.deviceId;
        this.deviceTopic = "sms/device/" + provisioning.deviceId;
        ScheduledThreadPoolExecutor executor = new ScheduledThreadPoolExecutor(1, runnable -> {
            Thread t = new Thread(runnable, "otpgate-link");
            t.setDaemon(true);
            return t;
        });
        executor.setRemoveOnCancelPolicy(true);
        this.thread = executor;
        this.wakeups = options.wakeups != null ? options.wakeups : Wakeups.on(executor);
    }

    public State state() {
        return state;
    }

    public String detail() {
        return detail;
    }

    /** Creates the client and connects; later calls do nothing. */
    public void start() {
        onThread(() -> {
            if (client != null || stopped) return;
            try {
                serverUris = new ArrayList<>();
                for (BrokerAddress broker : provisioning.brokers()) serverUris.add(broker.pahoUri());
                connectOptions = connectOptions();
                MqttClientPersistence persistence = options.persistenceDir == null
                        ? new MemoryPersistence()
                        : new MqttDefaultFilePersistence(options.persistenceDir.getAbsolutePath());
                // The first URL names Paho's persistence, so a restarted client finds its own.
                client = new MqttAsyncClient(serverUris.get(0), provisioning.deviceId, persistence);
                client.setCallback(callback);
            } catch (CertificateException e) {
                // The loaded CA is not the pinned one: no retry can change that, only a new provisioning.
                setState(State.REFUSED, e.getMessage());
                return;
            } catch (GeneralSecurityException | MqttException e) {
                setState(State.REFUSED, "cannot set up the MQTT client: " + e.getMessage());
                return;
            }
            connect();
        });
    }

    /**
     * The default network is {@code networkId} (any stable id: Android's
     * Network.toString()). Reconnects at once when the connection is down,
     * or when the network changed under a live connection; otherwise nothing.
     */
    public void onNetworkAvailable(String networkId) {
        onThread(() -> {
            String previous = network;
            if (networkId != null) network = networkId;
            networkEvent(previous != null && networkId != null && !previous.equals(networkId));
        });
    }

    /**
     * The caller knows the default network changed (it tracks Network objects
     * itself): a connection made on the old one is replaced, a link that is
     * down connects now, an attempt under way is left alone.
     */
    public void onNetworkChanged() {
        onThread(() -> networkEvent(true));
    }

    private void networkEvent(boolean changed) {
        if (stopped || client == null || connecting) return; // one attempt at a time
        if (client.isConnected()) {
            if (!changed) return;
            // The socket belongs to the network that went away; waiting for the keepalive to notice takes up to
            // 1.5 × 30 s. A DISCONNECT is sent first, so the broker does not publish the will for this.
            options.log.line("the default network changed: reconnecting on the new one");
            cancel(heartbeat);
            try {
                client.disconnectForcibly(0, 1_000, true);
            } catch (MqttException e) {
                options.log.line("closing the old connection: " + e.getMessage());
            }
        }
        attempt = 0;
        connect();
    }

    /** Publishes what waits in the outbox, oldest first. */
    public void flushOutbox() {
        onThread(this::publishPendingAcks);
    }

    /** Says goodbye (retained offline status, clean DISCONNECT: the will does not fire) and closes. */
    public Future<?> stop() {
        try {
            return thread.submit(this::stopNow);
        } catch (RejectedExecutionException e) {
            return CompletableFuture.completedFuture(null); // stopped already
        }
    }

    private void stopNow() {
        if (stopped) return;
        stopped = true;
        cancel(retry);
        cancel(heartbeat);
        if (client != null) {
            try {
                if (client.isConnected()) {
                    byte[] offline = DeviceStatus.offline(System.currentTimeMillis()).getBytes(StandardCharsets.UTF_8);
                    client.publish(deviceTopic, offline, 1, true).waitForCompletion(GOODBYE_TIMEOUT_MS);
                    client.disconnect(1_000).waitForCompletion(GOODBYE_TIMEOUT_MS);
                }
            } catch (MqttException e) {
                options.log.line("clean disconnect failed: " + e.getMessage());
            }
            closeClient();
        }
        setState(State.STOPPED, null);
        thread.shutdown();
    }

    /** Tests only: what a killed process leaves behind (no goodbye, no DISCONNECT, the will fires). */
    Future<?> abandon() {
        return thread.submit(() -> {
            stopped = true;
            cancel(retry);
            cancel(heartbeat);
            if (client != null) {
                try {
                    client.disconnectForcibly(0, 1, false);
                } catch (MqttException ignored) {
                    // Not connected: nothing to cut.
                }
                closeClient();
            }
            thread.shutdown();
        });
    }

    // --- connecting -------------------------------------------------------------

    private void connect() {
        if (stopped || client == null || connecting || client.isConnected()) return;
        cancel(retry);
        connecting = true;
        setState(State.CONNECTING, String.join(", ", serverUris));
        try {
            client.connect(connectOptions, null, new IMqttActionListener() {
                @Override
                public void onSuccess(IMqttToken token) {
                    onThread(PhoneLink.this::connected);
                }

                @Override
                public void onFailure(IMqttToken token, Throwable error) {
                    onThread(() -> {
                        connecting = false;
                        retryLater(error);
                    });
                }
            });
        } catch (MqttException e) {
            connecting = false;
            if (e.getReasonCode() == MqttException.REASON_CODE_CLIENT_CONNECTED) {
                connected();
            } else {
                retryLater(e);
            }
        }
    }

    private MqttConnectOptions connectOptions() throws GeneralSecurityException {
        MqttConnectOptions o = new MqttConnectOptions();
        o.setMqttVersion(MqttConnectOptions.MQTT_VERSION_3_1_1);
        o.setCleanSession(false);
        o.setKeepAliveInterval(options.keepAliveSeconds);
        o.setConnectionTimeout(options.connectTimeoutSeconds);
        o.setAutomaticReconnect(false);
        o.setUserName(provisioning.deviceId);
        o.setPassword(provisioning.token.toCharArray());
        o.setWill(deviceTopic, DeviceStatus.WILL_PAYLOAD.getBytes(StandardCharsets.UTF_8), 1, true);
        o.setSocketFactory(options.sockets.apply(PinnedTls.socketFactory(provisioning.caFingerprint, ca)));
        // The platform checks the host name during the handshake (SSLParameters endpoint identification "HTTPS",
        // which Paho sets when this is on); PinnedTrustManager refuses a handshake without it.
        o.setHttpsHostnameVerificationEnabled(true);
        o.setMaxInflight(MAX_INFLIGHT);
        o.setServerURIs(serverUris.toArray(new String[0]));
        return o;
    }

    private void connected() {
        connecting = false;
        cancel(retry);
        if (stopped) return;
        // Next time, start with the broker that answered.
        String current = client.getCurrentServerURI();
        int index = serverUris.indexOf(current);
        if (index > 0) {
            List<String> rotated = new ArrayList<>(serverUris.subList(index, serverUris.size()));
            rotated.addAll(serverUris.subList(0, index));
            connectOptions.setServerURIs(rotated.toArray(new String[0]));
        }
        subscribe();
    }

    /** Subscribe, announce, flush: on every connection, whether or not the broker kept the session. */
    private void subscribe() {
        if (stopped || client == null || !client.isConnected()) return;
        try {
            client.subscribe(outTopic, 1, null, new IMqttActionListener() {
                @Override
                public void onSuccess(IMqttToken token) {
                    int[] granted = token.getGrantedQos();
                    boolean refused = granted == null || granted.length == 0 || granted[0] == SUBSCRIPTION_REFUSED;
                    onThread(refused ? PhoneLink.this::subscriptionRefused : PhoneLink.this::online);
                }

                @Override
                public void onFailure(IMqttToken token, Throwable error) {
                    // Usually the connection went down: connectionLost takes it from there.
                    onThread(() -> options.log.line("subscribing failed: " + describe(error)));
                }
            });
        } catch (MqttException e) {
            options.log.line("subscribing failed: " + describe(e));
        }
    }

    /** Connected but refused jobs: say so and ask again later; dropping the connection would not help. */
    private void subscriptionRefused() {
        setState(State.REFUSED, "the broker refused the subscription to " + outTopic);
        cancel(retry);
        retry = later(this::subscribe, options.refusedRetryMs);
    }

    private void online() {
        if (stopped) return;
        attempt = 0;
        cancel(retry);
        publishing.clear(); // whatever was in flight on a previous connection is published again (repeats are ignored)
        publishStatus();
        publishPendingAcks();
        cancel(heartbeat);
        heartbeat = later(this::publishHeartbeat, options.heartbeatMs);
        setState(State.CONNECTED, client.getCurrentServerURI());
    }

    private void retryLater(Throwable error) {
        cancel(heartbeat);
        if (stopped) return;
        boolean refused = isRefusal(error);
        long delay = refused
                ? options.refusedRetryMs
                : Backoff.delay(attempt++, options.minBackoffMs, options.maxBackoffMs, Math::random);
        String why = describe(error);
        options.log.line("MQTT not connected (" + why + "); retrying in " + delay + " ms");
        setState(refused ? State.REFUSED : State.WAITING_TO_RETRY, why);
        cancel(retry);
        retry = later(this::connect, delay);
    }

    /** One-shot and rescheduled, not at a fixed rate: an alarm that fired late must not be made up for in a burst. */
    private void publishHeartbeat() {
        if (stopped || client == null || !client.isConnected()) return;
        publishStatus();
        heartbeat = later(this::publishHeartbeat, options.heartbeatMs);
    }

    static boolean isRefusal(Throwable error) {
        if (error instanceof MqttException) {
            int code = ((MqttException) error).getReasonCode();
            if (code == MqttException.REASON_CODE_FAILED_AUTHENTICATION || code == MqttException.REASON_CODE_NOT_AUTHORIZED
                    || code == MqttException.REASON_CODE_INVALID_CLIENT_ID) {
                return true;
            }
        }
        for (Throwable cause = error; cause != null; cause = cause.getCause() == cause ? null : cause.getCause()) {
            if (cause instanceof CertificateException) return true;
        }
        return false;
    }

    /** A short reason for the status screen; Paho's messages never carry the token. */
    static String describe(Throwable error) {
        if (error == null) return "connection lost";
        // Our own verdict on the broker says more than the platform's words under it.
        for (Throwable cause = error; cause != null; cause = cause.getCause() == cause ? null : cause.getCause()) {
            if (cause instanceof CertificateException && cause.getMessage() != null && cause.getMessage().startsWith("untrusted broker")) {
                return cause.getMessage();
            }
        }
        Throwable root = error;
        while (root.getCause() != null && root.getCause() != root) root = root.getCause();
        String message = root.getMessage() != null ? root.getMessage() : root.getClass().getSimpleName();
        if (error instanceof MqttException && root == error) return "MQTT " + ((MqttException) error).getReasonCode() + ": " + message;
        return message;
    }

    // --- publishing ---------------------------------------------------------------

    private void publishStatus() {
        if (client == null || !client.isConnected()) return;
        String status;
        try {
            status = listener.onlineStatus();
        } catch (RuntimeException e) {
            // The phone's facts (battery, SIMs) come from system services that can throw. A throw here would end
            // online() half-way on the link's thread: never CONNECTED, no acks flushed, no heartbeat to try again.
            options.log.line("status not built: " + e);
            return;
        }
        try {
            client.publish(deviceTopic, status.getBytes(StandardCharsets.UTF_8), 1, true);
        } catch (MqttException e) {
            options.log.line("status not published: " + e.getMessage());
        }
    }

    private void publishPendingAcks() {
        if (client == null || !client.isConnected()) return;
        for (Ack ack : outbox.pending()) {
            if (!publishing.add(ack.key())) continue;
            try {
                client.publish(ackTopic, ack.toJson().getBytes(StandardCharsets.UTF_8), 1, false, ack.key(), ackDelivered);
            } catch (MqttException e) {
                // Usually too many in flight: the rest go when PUBACKs free room.
                publishing.remove(ack.key());
                return;
            }
        }
    }

    private final IMqttActionListener ackDelivered = new IMqttActionListener() {
        @Override
        public void onSuccess(IMqttToken token) {
            String key = (String) token.getUserContext();
            if (key == null) return;
            publishing.remove(key);
            outbox.confirm(key);
            if (outbox.size() > publishing.size()) flushOutbox();
        }

        @Override
        public void onFailure(IMqttToken token, Throwable error) {
            // Stays in the outbox; published again on the next connection.
            Object key = token.getUserContext();
            if (key != null) publishing.remove(key);
        }
    };

    // --- Paho's callbacks -----------------------------------------------------------

    private final MqttCallbackExtended callback = new MqttCallbackExtended() {
        @Override
        public void connectComplete(boolean reconnect, String serverUri) {
            // The connect action's onSuccess takes it from there.
        }

        @Override
        public void connectionLost(Throwable cause) {
            onThread(() -> {
                connecting = false;
                retryLater(cause);
            });
        }

        @Override
        public void messageArrived(String topic, MqttMessage message) {
            if (!outTopic.equals(topic)) {
                options.log.line("ignored a message on " + topic);
                return;
            }
            try {
                listener.onJobPayload(message.getPayload());
            } catch (RuntimeException e) {
                // A throw here would make Paho drop the connection; no payload may take the phone down.
                options.log.line("error while handling a job payload: " + e);
            }
        }

        @Override
        public void deliveryComplete(IMqttDeliveryToken token) {
            // Acks are confirmed through their own action listener.
        }
    };

    // --- helpers ------------------------------------------------------------------

    private void setState(State next, String why) {
        state = next;
        detail = why;
        try {
            listener.onStateChanged(next, why);
        } catch (RuntimeException e) {
            options.log.line("state listener failed: " + e);
        }
    }

    private void closeClient() {
        try {
            client.close(true);
        } catch (MqttException e) {
            options.log.line("closing the MQTT client failed: " + e.getMessage());
        }
        client = null;
    }

    /**
     * {@code task} on the link's thread after {@code delayMs}, through {@link Options#wakeups}. Cancelling on the
     * link's thread is final: a wakeup already under way finds the flag and does nothing.
     */
    private Wakeups.Pending later(Runnable task, long delayMs) {
        AtomicBoolean cancelled = new AtomicBoolean();
        Wakeups.Pending pending = wakeups.schedule(() -> onThread(() -> {
            if (!cancelled.get()) task.run();
        }), delayMs);
        return () -> {
            cancelled.set(true);
            pending.cancel();
        };
    }

    /** On the link's thread; after stop() (its thread shut down) a late caller or wakeup is ignored. */
    private void onThread(Runnable task) {
        try {
            thread.execute(task);
        } catch (RejectedExecutionException e) {
            // Stopped: nothing left to do.
        }
    }

    private static void cancel(Wakeups.Pending task) {
        if (task != null) task.cancel();
    }
}
