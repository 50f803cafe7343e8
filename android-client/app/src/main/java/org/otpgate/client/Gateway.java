package org.otpgate.client;

import android.content.Context;
import android.net.ConnectivityManager;
import android.net.Network;
import android.os.Handler;
import android.os.HandlerThread;
import android.os.Looper;
import android.os.PowerManager;
import android.util.Log;
import java.io.IOException;
import java.time.LocalDate;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;
import org.otpgate.client.device.DeviceInfo;
import org.otpgate.client.sms.AndroidRadio;
import org.otpgate.client.store.Prefs;
import org.otpgate.core.Ack;
import org.otpgate.core.AckStatus;
import org.otpgate.core.DailyCount;
import org.otpgate.core.JobLedger;
import org.otpgate.core.PhoneEngine;
import org.otpgate.core.Provisioning;
import org.otpgate.core.net.PhoneLink;
import org.otpgate.core.net.PhoneStack;

/**
 * One per process: the core's PhoneStack (ledger, PhoneEngine with its send
 * window, ack outbox, PhoneLink: the wiring the JVM live tests run against a
 * real gateway) with Android's parts plugged in: SmsManager as the radio,
 * alarms for every timer, this class's thread for state changes. On top it
 * keeps what only a phone has: the network callback, the wake lock, the
 * status screen. GatewayService keeps the process alive and starts it;
 * SmsResultReceiver feeds it radio results, even in a process started only
 * for that broadcast.
 *
 * Threads: all disk, SMS and connection work runs on one background thread
 * ({@code handler}); the public methods post to it, so activities and
 * receivers never block the main thread (ANR). Its files are in
 * device-protected storage (Prefs.storage), readable in direct boot.
 */
public final class Gateway {
    public enum Connection { NOT_PROVISIONED, STOPPED, CONNECTING, CONNECTED, WAITING_TO_RETRY, REFUSED }

    private static final String TAG = "otpgate";
    /**
     * How long a restart waits for the old link's goodbye, so the new connection does not take over first:
     * PhoneLink gives its offline status and its DISCONNECT up to 3 s each, and a second more to be sure.
     */
    private static final long STOP_WAIT_MS = 7_000;
    private static Gateway instance;

    private final Context context;
    private final Prefs prefs;
    private final Handler handler;
    private final Handler main = new Handler(Looper.getMainLooper());
    private final List<Runnable> listeners = new CopyOnWriteArrayList<>();
    private final AlarmWakeups wakeups;

    /** Loaded on first use and kept for the process: a restart of the link keeps the queue and the send window. */
    private volatile PhoneStack stack;
    /** The engine's count, saved to Prefs after each sent SMS. */
    private DailyCount sentToday;
    private String stackProblem;
    private Provisioning active;
    /** Read by the alarms from other threads. */
    private volatile PowerManager.WakeLock wakeLock;
    private ConnectivityManager.NetworkCallback networkCallback;
    private volatile Connection connection = Connection.STOPPED;
    private volatile String connectionError;

    private Gateway(Context context) {
        this.context = context;
        this.prefs = new Prefs(context);
        HandlerThread thread = new HandlerThread("otpgate-gateway");
        thread.start();
        this.handler = new Handler(thread.getLooper());
        this.wakeups = new AlarmWakeups(context, handler, () -> wakeLock != null);
    }

    public static synchronized Gateway get(Context context) {
        if (instance == null) instance = new Gateway(context.getApplicationContext());
        return instance;
    }

    /** The stack, loaded on first use; null when the ledger cannot be read (then nothing is sent). */
    private synchronized PhoneStack stack() {
        if (stack != null || stackProblem != null) return stack;
        sentToday = prefs.sentToday();
        PhoneStack.Setup setup = new PhoneStack.Setup();
        setup.radio = new AndroidRadio(context);
        setup.onlineStatus = () -> DeviceInfo.onlineStatus(context);
        setup.maxPerMinute = prefs.maxPerMinute();
        setup.sentToday = sentToday;
        setup.log = line -> Log.i(TAG, line);
        // The engine's send window and expiry, the link's back-off and heartbeat: alarms, which fire in Doze.
        setup.wakeups = wakeups;
        // In order with start() and stop(), which run there too.
        setup.stateThread = handler::post;
        setup.onState = (state, detail) ->
                // A connected link's detail is the broker's URI, not an error.
                setConnection(Connection.valueOf(state.name()), state == PhoneLink.State.CONNECTED ? null : detail);
        setup.onAck = this::onAck;
        setup.onPayload = payload -> notifyListeners();
        try {
            // Device-protected: the ledger, the ack outbox and Paho's persistence survive a reboot and are there before unlock.
            stack = PhoneStack.open(Prefs.storage(context).getFilesDir(), setup);
        } catch (IOException | JobLedger.CorruptException e) {
            // Starting with an empty ledger could send old jobs a second time.
            stackProblem = "the job ledger cannot be read (" + e.getMessage() + "), so nothing is sent. "
                    + "Clear the app's storage once the last jobs have expired to start afresh.";
            Log.e(TAG, stackProblem);
        }
        return stack;
    }

    /** Connects if provisioned; does nothing when already running with the same provisioning. */
    public void start() {
        handler.post(this::startNow);
    }

    /**
     * The user's Stop or the service's end: jobs still waiting for the send window are failed (STOPPED) rather than
     * sent after the gateway gave up on them; the next start sends again.
     */
    public void stop() {
        handler.post(() -> stopNow(true));
    }

    /** After a new provisioning or changed settings. */
    public void restart() {
        handler.post(this::restartNow);
    }

    private synchronized void startNow() {
        Provisioning provisioning = prefs.provisioning();
        if (provisioning == null) {
            setConnection(Connection.NOT_PROVISIONED, null);
            return;
        }
        PhoneStack stack = stack();
        if (stack == null) {
            setConnection(Connection.REFUSED, stackProblem);
            return;
        }
        if (stack.link() != null) return;
        active = provisioning;
        // Keepalive 30 s and a 15 s connect timeout are PhoneLink's defaults; Paho's files go to the stack's mqtt/.
        PhoneLink.Options options = new PhoneLink.Options();
        options.heartbeatMs = Math.max(30, prefs.heartbeatSeconds()) * 1000L;
        options.log = line -> Log.i(TAG, line);
        stack.connect(provisioning, prefs.caCertificate(), options);
        watchNetwork();
        holdWakeLock(prefs.keepAwake());
    }

    /**
     * Waits (bounded) for the old link's goodbye on the gateway's thread, so a start posted after it (a service
     * restart, restartNow) cannot connect with the same client id first: the broker would drop the old session and
     * the gateway briefly see the phone offline. The wait is outside the lock, which is never held across a network
     * round trip. {@code failWaitingJobs}: a real stop; a restart for new settings keeps the queue and the window.
     */
    private void stopNow(boolean failWaitingJobs) {
        PhoneStack running;
        synchronized (this) {
            running = stack;
            active = null;
            unwatchNetwork();
            holdWakeLock(false);
            setConnection(prefs.provisioning() == null ? Connection.NOT_PROVISIONED : Connection.STOPPED, null);
        }
        if (running == null) return;
        try {
            boolean finished = failWaitingJobs ? running.stopSending(STOP_WAIT_MS) : running.disconnect(STOP_WAIT_MS);
            if (!finished) {
                Log.w(TAG, "the old MQTT link did not finish its goodbye within " + STOP_WAIT_MS + " ms");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void restartNow() {
        PhoneStack stack = stack();
        boolean running = stack != null && stack.link() != null;
        stopNow(false); // new settings, not a stop: the waiting jobs stay queued
        if (stack != null) stack.engine.setMaxPerMinute(prefs.maxPerMinute());
        if (running) startNow();
    }

    /** From SmsResultReceiver: the ledger write happens here, off the main thread; {@code done} runs after. */
    public void onSendResult(String id, int part, int parts, int resultCode, Runnable done) {
        withEngine(engine -> engine.onSendResult(id, part, parts, resultCode), done);
    }

    public void onDeliveryReport(String id, int part, int parts, int tpStatus, Runnable done) {
        withEngine(engine -> engine.onDeliveryReport(id, part, parts, tpStatus), done);
    }

    /** {@code work} on the gateway's thread, unless the ledger cannot be read; {@code done} either way. */
    private void withEngine(Consumer<PhoneEngine> work, Runnable done) {
        handler.post(() -> {
            try {
                PhoneStack stack = stack();
                if (stack != null) work.accept(stack.engine);
            } finally {
                done.run();
            }
        });
    }

    /** An alarm fired (WakeReceiver): run the timers that are due, then {@code done}. */
    public void wake(Runnable done) {
        handler.post(() -> {
            try {
                wakeups.runDue(true);
            } finally {
                done.run();
            }
        });
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

    /** What the status screen shows. */
    public static final class Screen {
        public final String text;
        /** The user wants the service running. */
        public final boolean enabled;
        public final boolean provisioned;

        Screen(String text, boolean enabled, boolean provisioned) {
            this.text = text;
            this.enabled = enabled;
            this.provisioned = provisioned;
        }
    }

    /** The status screen, built on the gateway's thread (it reads files) and handed to the main thread. */
    public void describe(Consumer<Screen> onMain) {
        handler.post(() -> {
            Screen screen = new Screen(describeNow(), prefs.serviceEnabled(), prefs.provisioning() != null);
            main.post(() -> onMain.accept(screen));
        });
    }

    private synchronized String describeNow() {
        StringBuilder out = new StringBuilder();
        Provisioning provisioning = active != null ? active : prefs.provisioning();
        out.append("device      ").append(provisioning == null ? "—" : provisioning.deviceId).append('\n');
        out.append("broker      ").append(provisioning == null ? "—" : provisioning.broker()).append('\n');
        out.append("connection  ").append(connection.name().toLowerCase().replace('_', ' ')).append('\n');
        String startFailure = prefs.startFailure();
        if (startFailure != null) out.append("not started ").append(startFailure).append('\n');
        if (connectionError != null) out.append("  why       ").append(connectionError).append('\n');
        PhoneStack stack = stack();
        if (stack != null) {
            PhoneEngine.Status status = stack.engine.status();
            out.append("queued      ").append(status.queued).append('\n');
            out.append("sending     ").append(status.sending).append('\n');
            out.append("sent today  ").append(status.sentToday).append('\n');
            out.append("per minute  ").append(status.maxPerMinute).append('\n');
            out.append("acks unsent ").append(stack.outbox.size()).append('\n');
            out.append("last error  ").append(status.lastError == null ? "—" : status.lastError).append('\n');
        } else {
            out.append("ledger      ").append(stackProblem).append('\n');
        }
        return out.toString();
    }

    // --- wiring ---------------------------------------------------------------

    /** The stack has queued the ack; runs with the engine's lock held, so only quick work that needs no other lock. */
    private void onAck(Ack ack) {
        if (ack.status == AckStatus.SENT) prefs.saveSentToday(sentToday, LocalDate.now().toString());
        notifyListeners();
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

    /** The running link, or null. */
    private PhoneLink link() {
        PhoneStack current = stack;
        return current == null ? null : current.link();
    }

    /**
     * Reconnect at once when the default network changes (Wi-Fi → LTE) or comes
     * back, rather than after the backoff or a keepalive timeout. The callback
     * also reports the network in use right after registering; telling that
     * apart from a change (and never disturbing the attempt start() is making)
     * is the core's PhoneLink.onNetworkAvailable, tested on the JVM. Network's
     * toString() is its id.
     */
    private void watchNetwork() {
        if (networkCallback != null) return;
        ConnectivityManager connectivity = context.getSystemService(ConnectivityManager.class);
        networkCallback = new ConnectivityManager.NetworkCallback() {
            @Override
            public void onAvailable(Network network) {
                PhoneLink current = link();
                if (current != null) current.onNetworkAvailable(network.toString());
            }
        };
        // Callbacks on the gateway's thread, in order with start() and stop().
        connectivity.registerDefaultNetworkCallback(networkCallback, handler);
    }

    /**
     * The watchdog's periodic wake-up: a link waiting out its backoff may have
     * an alarm Doze holds back (no wake lock), so it tries now. A connected or
     * connecting link is left alone.
     */
    public void nudge() {
        handler.post(() -> {
            PhoneLink current = link();
            if (current != null && connection == Connection.WAITING_TO_RETRY) current.onNetworkChanged();
        });
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
            wakeups.rearm();
        } else if (!hold && wakeLock != null) {
            wakeLock.release();
            wakeLock = null;
            wakeups.rearm();
        }
    }
}
