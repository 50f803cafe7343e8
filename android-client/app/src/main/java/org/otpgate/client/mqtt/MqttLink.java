package org.otpgate.client.mqtt;

import android.os.Handler;
import android.util.Log;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.Collections;
import java.util.HashSet;
import java.util.Set;
import org.eclipse.paho.client.mqttv3.IMqttActionListener;
import org.eclipse.paho.client.mqttv3.IMqttDeliveryToken;
import org.eclipse.paho.client.mqttv3.IMqttToken;
import org.eclipse.paho.client.mqttv3.MqttAsyncClient;
import org.eclipse.paho.client.mqttv3.MqttCallbackExtended;
import org.eclipse.paho.client.mqttv3.MqttConnectOptions;
import org.eclipse.paho.client.mqttv3.MqttException;
import org.eclipse.paho.client.mqttv3.MqttMessage;
import org.eclipse.paho.client.mqttv3.persist.MqttDefaultFilePersistence;
import org.otpgate.core.Ack;
import org.otpgate.core.AckOutbox;
import org.otpgate.core.Backoff;
import org.otpgate.core.DeviceStatus;
import org.otpgate.core.Provisioning;

/**
 * The phone's MQTT connection, with the Paho Java client run inside our own
 * foreground service (not the Paho Android Service). The contract of
 * DESIGN.md: client id = username = device id, password = token,
 * cleanSession=false (the broker keeps QoS 1 jobs while the phone is away),
 * keepalive 30 s, a retained will {"online":false} on sms/device/&lt;id&gt;,
 * jobs from sms/out/&lt;id&gt; at QoS 1, acks to sms/ack/&lt;id&gt; at QoS 1.
 *
 * Reconnects itself with the core's Backoff (Paho's automatic reconnect has
 * no jitter and would not re-subscribe for us). Every method runs its work
 * on {@code handler}'s thread, so connection state needs no locks.
 */
public final class MqttLink implements MqttCallbackExtended {
    public enum State { CONNECTING, CONNECTED, WAITING_TO_RETRY, REFUSED }

    public interface Listener {
        void onStateChanged(State state, String error);

        /** Called on Paho's thread; Paho sends the PUBACK once this returns, so the job is recorded first. */
        void onJobPayload(byte[] payload);

        /** The retained online status to publish now. */
        String onlineStatus();
    }

    private static final String TAG = "otpgate";
    private static final int KEEPALIVE_SECONDS = 30;
    private static final int CONNECT_TIMEOUT_SECONDS = 15;
    /** Acks waiting after an outage go out together; Paho's default of 10 in flight would refuse the rest. */
    private static final int MAX_INFLIGHT = 200;
    private static final long GOODBYE_TIMEOUT_MS = 3_000;
    private static final int SUBSCRIPTION_REFUSED = 0x80;

    private final Provisioning provisioning;
    private final X509Certificate caFromUrl;
    private final AckOutbox outbox;
    private final Listener listener;
    private final Handler handler;
    private final File persistenceDir;
    private final long heartbeatMs;
    private final String outTopic;
    private final String ackTopic;
    private final String deviceTopic;
    /** Outbox keys published and not yet PUBACKed, so a flush does not publish them twice. */
    private final Set<String> publishing = Collections.synchronizedSet(new HashSet<String>());
    private final Runnable connectTask = this::connect;
    private final Runnable heartbeatTask = this::heartbeat;

    private MqttAsyncClient client;
    private int attempt;
    private boolean stopped;

    public MqttLink(Provisioning provisioning, X509Certificate caFromUrl, AckOutbox outbox, Listener listener,
                    Handler handler, File persistenceDir, int heartbeatSeconds) {
        this.provisioning = provisioning;
        this.caFromUrl = caFromUrl;
        this.outbox = outbox;
        this.listener = listener;
        this.handler = handler;
        this.persistenceDir = persistenceDir;
        this.heartbeatMs = Math.max(30, heartbeatSeconds) * 1000L;
        this.outTopic = "sms/out/" + provisioning.deviceId;
        this.ackTopic = "sms/ack/" + provisioning.deviceId;
        this.deviceTopic = "sms/device/" + provisioning.deviceId;
    }

    public void start() {
        handler.post(() -> {
            try {
                // File persistence keeps QoS 1 acks in flight across a process restart.
                client = new MqttAsyncClient(provisioning.broker().pahoUri(), provisioning.deviceId,
                        new MqttDefaultFilePersistence(persistenceDir.getAbsolutePath()));
                client.setCallback(this);
            } catch (MqttException e) {
                listener.onStateChanged(State.REFUSED, "cannot create the MQTT client: " + e.getMessage());
                return;
            }
            connect();
        });
    }

    /** A network came back: try now instead of waiting out the backoff. */
    public void reconnectNow() {
        handler.post(() -> {
            if (stopped || client == null || client.isConnected()) return;
            handler.removeCallbacks(connectTask);
            attempt = 0;
            connect();
        });
    }

    /** Publishes what waits in the outbox, oldest first. */
    public void flushOutbox() {
        handler.post(this::publishPendingAcks);
    }

    /** Says goodbye (retained offline status, clean DISCONNECT: the will does not fire) and closes. */
    public void stop() {
        handler.post(() -> {
            stopped = true;
            handler.removeCallbacks(connectTask);
            handler.removeCallbacks(heartbeatTask);
            if (client == null) return;
            try {
                if (client.isConnected()) {
                    byte[] offline = DeviceStatus.offline(System.currentTimeMillis()).getBytes(StandardCharsets.UTF_8);
                    client.publish(deviceTopic, offline, 1, true).waitForCompletion(GOODBYE_TIMEOUT_MS);
                    client.disconnect(1_000).waitForCompletion(GOODBYE_TIMEOUT_MS);
                }
            } catch (MqttException e) {
                Log.i(TAG, "clean disconnect failed: " + e.getMessage());
            }
            try {
                client.close();
            } catch (MqttException e) {
                Log.i(TAG, "closing the MQTT client failed: " + e.getMessage());
            }
            client = null;
        });
    }

    // --- connecting -----------------------------------------------------------

    private void connect() {
        if (stopped || client == null) return;
        listener.onStateChanged(State.CONNECTING, null);
        try {
            client.connect(options(), null, new IMqttActionListener() {
                @Override
                public void onSuccess(IMqttToken token) {
                    handler.post(MqttLink.this::subscribe);
                }

                @Override
                public void onFailure(IMqttToken token, Throwable error) {
                    handler.post(() -> retryLater(error));
                }
            });
        } catch (Exception e) {
            retryLater(e);
        }
    }

    private MqttConnectOptions options() throws Exception {
        MqttConnectOptions options = new MqttConnectOptions();
        options.setMqttVersion(MqttConnectOptions.MQTT_VERSION_3_1_1);
        options.setCleanSession(false);
        options.setKeepAliveInterval(KEEPALIVE_SECONDS);
        options.setConnectionTimeout(CONNECT_TIMEOUT_SECONDS);
        options.setAutomaticReconnect(false);
        options.setUserName(provisioning.deviceId);
        options.setPassword(provisioning.token.toCharArray());
        options.setWill(deviceTopic, DeviceStatus.WILL_PAYLOAD.getBytes(StandardCharsets.UTF_8), 1, true);
        options.setSocketFactory(TlsSockets.pinned(provisioning, caFromUrl));
        // The pinned trust manager already checks that the certificate names the host we dialled
        // (tested in the core); Paho's own check depends on SSLParameters support that differs
        // between Android versions, so it is not relied on.
        options.setHttpsHostnameVerificationEnabled(false);
        options.setMaxInflight(MAX_INFLIGHT);
        return options;
    }

    /** Subscribe, announce, flush: on every connection, whether or not the broker kept the session. */
    private void subscribe() {
        if (stopped || client == null) return;
        try {
            client.subscribe(outTopic, 1, null, new IMqttActionListener() {
                @Override
                public void onSuccess(IMqttToken token) {
                    int[] granted = token.getGrantedQos();
                    if (granted == null || granted.length == 0 || granted[0] == SUBSCRIPTION_REFUSED) {
                        handler.post(() -> retryLater(new IllegalStateException("the broker refused the subscription to " + outTopic)));
                    } else {
                        handler.post(MqttLink.this::online);
                    }
                }

                @Override
                public void onFailure(IMqttToken token, Throwable error) {
                    handler.post(() -> retryLater(error));
                }
            });
        } catch (MqttException e) {
            retryLater(e);
        }
    }

    private void online() {
        attempt = 0;
        publishStatus();
        publishPendingAcks();
        handler.removeCallbacks(heartbeatTask);
        handler.postDelayed(heartbeatTask, heartbeatMs);
        listener.onStateChanged(State.CONNECTED, null);
    }

    private void retryLater(Throwable error) {
        handler.removeCallbacks(heartbeatTask);
        if (stopped) return;
        boolean refused = isRefusal(error);
        // A refusal (bad token, untrusted broker) will not fix itself soon: retry slowly, and say so.
        long delay = refused
                ? Backoff.DEFAULT_MAX_MS
                : Backoff.delay(attempt++, Backoff.DEFAULT_MIN_MS, Backoff.DEFAULT_MAX_MS, Math::random);
        String why = describe(error);
        Log.i(TAG, "MQTT not connected (" + why + "); retrying in " + delay + " ms");
        listener.onStateChanged(refused ? State.REFUSED : State.WAITING_TO_RETRY, why);
        if (client != null && client.isConnected()) {
            try {
                client.disconnectForcibly(1_000, 1_000);
            } catch (MqttException ignored) {
                // Already going down.
            }
        }
        handler.removeCallbacks(connectTask);
        handler.postDelayed(connectTask, delay);
    }

    private static boolean isRefusal(Throwable error) {
        if (error instanceof MqttException) {
            int code = ((MqttException) error).getReasonCode();
            if (code == MqttException.REASON_CODE_FAILED_AUTHENTICATION || code == MqttException.REASON_CODE_NOT_AUTHORIZED
                    || code == MqttException.REASON_CODE_INVALID_CLIENT_ID) {
                return true;
            }
        }
        for (Throwable cause = error; cause != null; cause = cause.getCause()) {
            if (cause instanceof CertificateException) return true;
        }
        return false;
    }

    /** A short reason for the status screen; Paho's messages never carry the token. */
    private static String describe(Throwable error) {
        Throwable root = error;
        while (root.getCause() != null && root.getCause() != root) root = root.getCause();
        String message = root.getMessage() != null ? root.getMessage() : root.getClass().getSimpleName();
        if (error instanceof MqttException && root == error) return "MQTT " + ((MqttException) error).getReasonCode() + ": " + message;
        return message;
    }

    // --- publishing -----------------------------------------------------------

    private void heartbeat() {
        publishStatus();
        handler.postDelayed(heartbeatTask, heartbeatMs);
    }

    private void publishStatus() {
        if (client == null || !client.isConnected()) return;
        try {
            client.publish(deviceTopic, listener.onlineStatus().getBytes(StandardCharsets.UTF_8), 1, true);
        } catch (MqttException e) {
            Log.i(TAG, "status not published: " + e.getMessage());
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
            publishing.remove(key);
            outbox.confirm(key);
            if (outbox.size() > publishing.size()) flushOutbox();
        }

        @Override
        public void onFailure(IMqttToken token, Throwable error) {
            // Stays in the outbox; published again on the next connection.
            publishing.remove((String) token.getUserContext());
        }
    };

    // --- Paho callbacks -------------------------------------------------------

    @Override
    public void connectComplete(boolean reconnect, String serverUri) {
        // Subscription and announcements follow the connect action's onSuccess.
    }

    @Override
    public void connectionLost(Throwable cause) {
        handler.post(() -> retryLater(cause));
    }

    @Override
    public void messageArrived(String topic, MqttMessage message) {
        if (!outTopic.equals(topic)) {
            Log.i(TAG, "ignored a message on " + topic);
            return;
        }
        try {
            listener.onJobPayload(message.getPayload());
        } catch (RuntimeException e) {
            // A throw here would make Paho drop the connection; no payload may take the phone down.
            Log.e(TAG, "error while handling a job payload", e);
        }
    }

    @Override
    public void deliveryComplete(IMqttDeliveryToken token) {
        // Acks are confirmed through their own action listener.
    }
}
