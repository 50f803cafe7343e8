package org.otpgate.client;

import android.content.Context;
import android.net.ConnectivityManager;
import android.net.Network;
import android.os.Handler;
import android.os.HandlerThread;
import android.os.PowerManager;
import android.util.Log;
import java.io.File;
import java.io.IOException;
import java.time.LocalDate;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.otpgate.client.device.DeviceInfo;
import org.otpgate.client.mqtt.MqttLink;
import org.otpgate.client.sms.AndroidRadio;
import org.otpgate.client.store.Prefs;
import org.otpgate.core.Ack;
import org.otpgate.core.AckOutbox;
import org.otpgate.core.AckStatus;
import org.otpgate.core.DailyCount;
import org.otpgate.core.FileTextStore;
import org.otpgate.core.JobLedger;
import org.otpgate.core.PhoneEngine;
import org.otpgate.core.Provisioning;
import org.otpgate.core.TextStore;

/**
 * One per process: the core's PhoneEngine (jobs, ledger, send window), the
 * ack outbox and the MQTT link, wired to Android. GatewayService keeps the
 * process alive and starts it; SmsResultReceiver feeds it radio results, even
 * in a process started only for that broadcast.
 */
public final class Gateway {
    public enum Connection { NOT_PROVISIONED, STOPPED, CONNECTING, CONNECTED, WAITING_TO_RETRY, REFUSED }

    private static final String TAG = "otpgate";
    private static Gateway instance;

    private final Context context;
    private final Prefs prefs;
    private final Handler handler;
    private final List<Runnable> listeners = new CopyOnWriteArrayList<>();
    private final Runnable pump = () -> {
        PhoneEngine engine = engine();
        if (engine != null) engine.pump();
    };

    private PhoneEngine engine;
    private AckOutbox outbox;
    private DailyCount sentToday;
    private String engineProblem;
    /** Read from engine callbacks without the Gateway lock. */
    private volatile MqttLink link;
    private Provisioning active;
    private PowerManager.WakeLock wakeLock;
    private ConnectivityManager.NetworkCallback networkCallback;
    private volatile Connection connection = Connection.STOPPED;
    private volatile String connectionError;

    private Gateway(Context context) {
        this.context = context;
        this.prefs = new Prefs(context);
        HandlerThread thread = new HandlerThread("otpgate-gateway");
        thread.start();
        this.handler = new Handler(thread.getLooper());
    }

    public static synchronized Gateway get(Context context) {
        if (instance == null) instance = new Gateway(context.getApplicationContext());
        return instance;
    }

    /** The engine, loaded on first use; null when the ledger cannot be read (then nothing is sent). */
    private synchronized PhoneEngine engine() {
        if (engine != null || engineProblem != null) return engine;
        File dir = context.getFilesDir();
        TextStore ledgerStore = new FileTextStore(new File(dir, "ledger.json"));
        outbox = AckOutbox.open(new FileTextStore(new File(dir, "acks.json")));
        sentToday = prefs.sentToday();
        try {
            JobLedger ledger = PhoneEngine.loadLedger(ledgerStore, System.currentTimeMillis());
            engine = new PhoneEngine(ledger, ledgerStore, new AndroidRadio(context), this::onAck, this::wakeAt,
                    new PhoneEngine.Clock() {
                        @Override
                        public long now() {
                            return System.currentTimeMillis();
                        }

                        @Override
                        public String today() {
                            return LocalDate.now().toString();
                        }
                    },
                    line -> Log.i(TAG, line), prefs.maxPerMinute(), sentToday);
        } catch (IOException | JobLedger.CorruptException e) {
            // Starting with an empty ledger could send old jobs a second time.
            engineProblem = "the job ledger cannot be read (" + e.getMessage() + "), so nothing is sent. "
                    + "Clear the app's storage once the last jobs have expired to start afresh.";
            Log.e(TAG, engineProblem);
        }
        return engine;
    }

    /** Connects if provisioned; does nothing when already running with the same provisioning. */
    public synchronized void start() {
        Provisioning provisioning = prefs.provisioning();
        if (provisioning == null) {
            setConnection(Connection.NOT_PROVISIONED, null);
            return;
        }
        if (link != null) return;
        PhoneEngine engine = engine();
        if (engine == null) {
            setConnection(Connection.REFUSED, engineProblem);
            return;
        }
        active = provisioning;
        link = new MqttLink(provisioning, prefs.caCertificate(), outbox, new LinkListener(), handler,
                new File(context.getFilesDir(), "mqtt"), prefs.heartbeatSeconds());
        link.start();
        watchNetwork();
        holdWakeLock(prefs.keepAwake());
        engine.pump();
    }

    public synchronized void stop() {
        if (link != null) link.stop();
        link = null;
        active = null;
        unwatchNetwork();
        holdWakeLock(false);
        setConnection(prefs.provisioning() == null ? Connection.NOT_PROVISIONED : Connection.STOPPED, null);
    }

    /** After a new provisioning or changed settings. */
    public synchronized void restart() {
        boolean running = link != null;
        stop();
        PhoneEngine engine = engine();
        if (engine != null) engine.setMaxPerMinute(prefs.maxPerMinute());
        if (running) start();
    }

    public void onSendResult(String id, int part, int parts, int resultCode) {
        PhoneEngine engine = engine();
        if (engine != null) engine.onSendResult(id, part, parts, resultCode);
    }

    public void onDeliveryReport(String id, int part, int parts, int tpStatus) {
        PhoneEngine engine = engine();
        if (engine != null) engine.onDeliveryReport(id, part, parts, tpStatus);
    }

    public Connection connection() {
        return connection;
    }

    public void addListener(Runnable listener) {
        listeners.add(listener);
    }

    public void removeListener(Runnable listener) {
        listeners.remove(listener);
    }

    /** The status screen's text. */
    public synchronized String describe() {
        StringBuilder out = new StringBuilder();
        Provisioning provisioning = active != null ? active : prefs.provisioning();
        out.append("device      ").append(provisioning == null ? "—" : provisioning.deviceId).append('\n');
        out.append("broker      ").append(provisioning == null ? "—" : provisioning.broker()).append('\n');
        out.append("connection  ").append(connection.name().toLowerCase().replace('_', ' ')).append('\n');
        if (connectionError != null) out.append("  why       ").append(connectionError).append('\n');
        PhoneEngine engine = engine();
        if (engine != null) {
            PhoneEngine.Status status = engine.status();
            out.append("queued      ").append(status.queued).append('\n');
            out.append("sending     ").append(status.sending).append('\n');
            out.append("sent today  ").append(status.sentToday).append('\n');
            out.append("per minute  ").append(status.maxPerMinute).append('\n');
            out.append("acks unsent ").append(outbox.size()).append('\n');
            out.append("last error  ").append(status.lastError == null ? "—" : status.lastError).append('\n');
        } else {
            out.append("ledger      ").append(engineProblem).append('\n');
        }
        return out.toString();
    }

    // --- wiring ---------------------------------------------------------------

    private void onAck(Ack ack) {
        outbox.add(ack);
        if (ack.status == AckStatus.SENT) prefs.saveSentToday(sentToday, LocalDate.now().toString());
        MqttLink current = link;
        if (current != null) current.flushOutbox();
        notifyListeners();
    }

    private void wakeAt(long at) {
        handler.removeCallbacks(pump);
        handler.postDelayed(pump, Math.max(0, at - System.currentTimeMillis()));
    }

    private void setConnection(Connection state, String error) {
        connection = state;
        connectionError = error;
        notifyListeners();
    }

    /**
     * Posted, never run in place: callers may hold the engine's lock, and a
     * listener that reads describe() takes the Gateway's lock and then the
     * engine's, which would deadlock.
     */
    private void notifyListeners() {
        handler.post(() -> {
            for (Runnable listener : listeners) listener.run();
        });
    }

    private final class LinkListener implements MqttLink.Listener {
        @Override
        public void onStateChanged(MqttLink.State state, String error) {
            setConnection(Connection.valueOf(state.name()), error);
        }

        @Override
        public void onJobPayload(byte[] payload) {
            PhoneEngine engine = engine();
            if (engine != null) engine.onPayload(payload);
            notifyListeners();
        }

        @Override
        public String onlineStatus() {
            return DeviceInfo.onlineStatus(context);
        }
    }

    /** Reconnect at once when a network appears, rather than after the backoff. */
    private void watchNetwork() {
        if (networkCallback != null) return;
        ConnectivityManager connectivity = context.getSystemService(ConnectivityManager.class);
        networkCallback = new ConnectivityManager.NetworkCallback() {
            @Override
            public void onAvailable(Network network) {
                MqttLink current = link;
                if (current != null) current.reconnectNow();
            }
        };
        connectivity.registerDefaultNetworkCallback(networkCallback);
    }

    private void unwatchNetwork() {
        if (networkCallback == null) return;
        context.getSystemService(ConnectivityManager.class).unregisterNetworkCallback(networkCallback);
        networkCallback = null;
    }

    /**
     * Paho sends keepalive pings from a Java timer, which stops while the CPU
     * sleeps; the broker then drops the phone and publishes its will. A partial
     * wake lock (honoured in Doze for apps exempt from battery optimisation)
     * keeps the pings going. A sending phone is usually on a charger.
     */
    @SuppressWarnings("WakelockTimeout") // held for as long as the gateway runs, on purpose
    private void holdWakeLock(boolean hold) {
        if (hold && wakeLock == null) {
            PowerManager power = context.getSystemService(PowerManager.class);
            wakeLock = power.newWakeLock(PowerManager.PARTIAL_WAKE_LOCK, "otpgate:mqtt");
            wakeLock.setReferenceCounted(false);
            wakeLock.acquire();
        } else if (!hold && wakeLock != null) {
            wakeLock.release();
            wakeLock = null;
        }
    }
}
