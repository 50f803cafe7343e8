package org.otpgate.client.mqtt;

import android.os.Handler;
import android.util.Log;
import java.io.File;
import java.security.cert.X509Certificate;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.otpgate.core.AckOutbox;
import org.otpgate.core.Provisioning;
import org.otpgate.core.net.PhoneLink;
import org.otpgate.core.net.Wakeups;

/**
 * The phone's MQTT connection: the core's {@link PhoneLink} (Paho 1.2.5, the
 * pinned CA through the platform's PKIX and host name check, one connection
 * attempt at a time, back-off, several brokers), which the JVM live tests
 * drive against a real gateway, adapted to Android: state changes arrive on
 * {@code handler}'s thread and log lines go to logcat. Nothing about the
 * connection is decided here.
 */
public final class MqttLink {
    /** Names match Gateway.Connection. */
    public enum State { CONNECTING, CONNECTED, WAITING_TO_RETRY, REFUSED, STOPPED }

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

    private final PhoneLink link;

    public MqttLink(Provisioning provisioning, X509Certificate caFromUrl, AckOutbox outbox, Listener listener,
                    Handler handler, Wakeups wakeups, File persistenceDir, int heartbeatSeconds) {
        PhoneLink.Options options = new PhoneLink.Options();
        options.keepAliveSeconds = KEEPALIVE_SECONDS;
        options.connectTimeoutSeconds = CONNECT_TIMEOUT_SECONDS;
        options.heartbeatMs = Math.max(30, heartbeatSeconds) * 1000L;
        options.persistenceDir = persistenceDir;
        options.log = line -> Log.i(TAG, line);
        // Back-off and heartbeat on alarms: the link's own Java timer stops in deep sleep.
        options.wakeups = wakeups;
        this.link = new PhoneLink(provisioning, caFromUrl, outbox, new PhoneLink.Listener() {
            @Override
            public void onStateChanged(PhoneLink.State state, String detail) {
                State mapped = State.valueOf(state.name());
                // A connected link's detail is the broker's URI, not an error.
                String error = state == PhoneLink.State.CONNECTED ? null : detail;
                handler.post(() -> listener.onStateChanged(mapped, error));
            }

            @Override
            public void onJobPayload(byte[] payload) {
                listener.onJobPayload(payload);
            }

            @Override
            public String onlineStatus() {
                return listener.onlineStatus();
            }
        }, options);
    }

    public void start() {
        link.start();
    }

    /**
     * The default network is {@code networkId} (e.g. {@code Network.toString()} from the
     * NetworkCallback). Reconnects only when the connection is down or the network really
     * changed; the callback's first onAvailable for the network in use does nothing.
     */
    public void onNetworkAvailable(String networkId) {
        link.onNetworkAvailable(networkId);
    }

    /**
     * The default network changed (the caller compares Network objects): a connection made on
     * the old network is replaced, a link that is down connects now, an attempt under way is left
     * alone. Not for the callback's first onAvailable, which only reports the network in use.
     */
    public void reconnectNow() {
        link.onNetworkChanged();
    }

    /** Publishes what waits in the outbox, oldest first. */
    public void flushOutbox() {
        link.flushOutbox();
    }

    /**
     * Says goodbye (retained offline status, clean DISCONNECT: the will does not fire) and closes, waiting at most
     * {@code timeoutMs} for it; false when it did not finish in time. Blocks: never on the main thread.
     */
    public boolean stop(long timeoutMs) {
        try {
            link.stop().get(timeoutMs, TimeUnit.MILLISECONDS);
            return true;
        } catch (TimeoutException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        } catch (ExecutionException e) {
            Log.w(TAG, "stopping the MQTT link failed", e.getCause());
            return true;
        }
    }
}
