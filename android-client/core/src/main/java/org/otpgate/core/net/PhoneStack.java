package org.otpgate.core.net;

import java.io.File;
import java.io.IOException;
import java.security.cert.X509Certificate;
import java.time.LocalDate;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BiConsumer;
import java.util.function.Consumer;
import java.util.function.Supplier;
import org.otpgate.core.Ack;
import org.otpgate.core.AckOutbox;
import org.otpgate.core.DailyCount;
import org.otpgate.core.FileTextStore;
import org.otpgate.core.JobLedger;
import org.otpgate.core.PhoneEngine;
import org.otpgate.core.Provisioning;
import org.otpgate.core.SendWindow;
import org.otpgate.core.TextStore;

/**
 * A whole sending phone minus the radio and the screens: the never-twice job
 * ledger, the job engine, the persistent ack outbox and the MQTT link, kept
 * in one folder ({@code ledger.json}, {@code acks.json}, {@code mqtt/} for
 * Paho's persistence). The one place they are wired together: the app runs it
 * with SmsManager as the radio and alarms as its {@link Wakeups}; the live
 * tests run it with a fake radio against a real gateway.
 *
 * <p>The ledger, engine and outbox live as long as the stack; the link comes
 * and goes with {@link #connect} and {@link #disconnect}, so a new provisioning
 * or new settings keep the jobs waiting for the send window, the window itself
 * (Android's 30 a minute counts across a restart of the link) and the parts
 * whose radio results are still to come. Only {@link #stopSending} (the
 * user's Stop) fails the waiting jobs; the next {@link #connect} sends again.
 */
public final class PhoneStack {
    /** What the phone and the JVM give the stack differently. */
    public static final class Setup {
        /** The SMS hardware: SmsManager on the phone, a fake in the tests. Required. */
        public PhoneEngine.Radio radio;
        /** The retained online status to publish on every connection and heartbeat. Required. */
        public Supplier<String> onlineStatus;
        public int maxPerMinute = SendWindow.ANDROID_DEFAULT_MAX_PER_MINUTE;
        /** "Sent today" restored from a previous run; null starts at zero. The engine counts on this object. */
        public DailyCount sentToday;
        public PhoneEngine.Log log = line -> { };
        /**
         * Every timer: the engine's (send window, expiry) and, unless the link's options name their own, the
         * link's (back-off, heartbeat). Null: a Java scheduler of the stack's own for the engine and the link's
         * own thread for the link, whose clocks stop while a phone sleeps; the app gives alarms.
         */
        public Wakeups wakeups;
        /** Where {@link #onState} runs, in order: the app's gateway thread; by default the link's thread. */
        public Executor stateThread = Runnable::run;
        /** The current link's state; a link that was disconnected is no longer heard from. */
        public BiConsumer<PhoneLink.State, String> onState = (state, detail) -> { };
        /**
         * The engine made {@code ack}; it is in the outbox and on its way. Runs with the engine's lock held:
         * it must not call back into the engine nor wait for a thread that does.
         */
        public Consumer<Ack> onAck = ack -> { };
        /** On Paho's thread after the engine recorded a job payload, before the PUBACK leaves. */
        public Consumer<byte[]> onPayload = payload -> { };
    }

    public final PhoneEngine engine;
    public final AckOutbox outbox;
    private final File dir;
    private final Setup setup;
    private final Wakeups wakeups;
    /** Only when the setup brought no wakeups; stopped by {@link #stop}. */
    private final ScheduledThreadPoolExecutor ownTimers;
    /** The engine's one pending timer. Not under the stack's lock: the engine asks for it holding its own. */
    private final AtomicReference<Wakeups.Pending> engineWake = new AtomicReference<>();
    /** Null while disconnected. */
    private volatile PhoneLink link;

    private PhoneStack(File dir, Setup setup) throws IOException, JobLedger.CorruptException {
        if (setup.radio == null || setup.onlineStatus == null) throw new IllegalArgumentException("a PhoneStack needs a radio and an online status");
        this.dir = dir;
        this.setup = setup;
        TextStore ledgerStore = new FileTextStore(new File(dir, "ledger.json"));
        // A damaged ledger throws: starting empty could send old jobs a second time.
        JobLedger ledger = PhoneEngine.loadLedger(ledgerStore, System.currentTimeMillis());
        outbox = AckOutbox.open(new FileTextStore(new File(dir, "acks.json")));
        if (setup.wakeups != null) {
            ownTimers = null;
            wakeups = setup.wakeups;
        } else {
            ownTimers = new ScheduledThreadPoolExecutor(1, runnable -> {
                Thread t = new Thread(runnable, "otpgate-engine");
                t.setDaemon(true);
                return t;
            });
            ownTimers.setRemoveOnCancelPolicy(true);
            wakeups = ignoringStop(Wakeups.on(ownTimers));
        }
        DailyCount sentToday = setup.sentToday != null ? setup.sentToday : new DailyCount(LocalDate.now().toString(), 0);
        engine = new PhoneEngine(ledger, ledgerStore, setup.radio, this::onAck, this::wakeAt, new PhoneEngine.Clock() {
            @Override
            public long now() {
                return System.currentTimeMillis();
            }

            @Override
            public String today() {
                return LocalDate.now().toString();
            }
        }, setup.log, setup.maxPerMinute, sentToday);
    }

    /** Loads the ledger and the outbox of {@code dir}; {@link #connect} connects. */
    public static PhoneStack open(File dir, Setup setup) throws IOException, JobLedger.CorruptException {
        return new PhoneStack(dir, setup);
    }

    /** The link while connected (or trying to be), else null. */
    public PhoneLink link() {
        return link;
    }

    /**
     * Starts a link for {@code provisioning} and sends what waits, also after {@link #stopSending}; does nothing
     * while a link runs (disconnect first to change the provisioning). Fills in what {@code options} leave open:
     * Paho's persistence in {@code mqtt/} of the stack's folder, and the stack's wakeups.
     */
    public PhoneLink connect(Provisioning provisioning, X509Certificate ca, PhoneLink.Options options) {
        PhoneLink started;
        synchronized (this) {
            if (link != null) return link;
            if (options.persistenceDir == null) options.persistenceDir = new File(dir, "mqtt");
            if (options.wakeups == null) options.wakeups = setup.wakeups;
            LinkEvents events = new LinkEvents();
            started = new PhoneLink(provisioning, ca, outbox, events, options);
            events.owner = started;
            link = started;
        }
        // Before the link starts: the jobs the broker kept arrive right after the CONNACK, and a stopped engine would
        // fail them. Outside the lock: the engine's callbacks never take it, and this keeps it that way.
        engine.startSending();
        started.start();
        return started;
    }

    /**
     * Goodbye (retained offline status) and a clean DISCONNECT, so the broker does not publish the will; waits
     * at most {@code timeoutMs}, and returns false when that was not enough. The engine stays: radio results
     * and queued jobs go on, their acks wait in the outbox for the next connection.
     */
    public boolean disconnect(long timeoutMs) throws InterruptedException {
        PhoneLink old;
        synchronized (this) {
            old = link;
            link = null;
        }
        if (old == null) return true;
        try {
            old.stop().get(timeoutMs, TimeUnit.MILLISECONDS);
            return true;
        } catch (TimeoutException e) {
            return false;
        } catch (ExecutionException e) {
            setup.log.line("stopping the MQTT link failed: " + e.getCause());
            return true;
        }
    }

    /**
     * The user's Stop, or the service's end: the engine fails every job not yet handed to the radio (STOPPED, see
     * {@link PhoneEngine#stopSending}) and sends nothing until the next {@link #connect}; then {@link #disconnect},
     * whose answer it returns.
     * Failing first lets the failed acks leave on the link that is still up, so the gateway fails over at once;
     * any the broker did not take wait in the outbox for the next connection.
     */
    public boolean stopSending(long timeoutMs) throws InterruptedException {
        engine.stopSending();
        // Nothing is left for the engine's timer to send; on the phone it is an alarm, which would wake it for nothing.
        Wakeups.Pending pending = engineWake.getAndSet(null);
        if (pending != null) pending.cancel();
        return disconnect(timeoutMs);
    }

    /** For a process done with the stack (the JVM tests): disconnects, then stops the stack's own timers. */
    public void stop(long timeoutMs) throws InterruptedException {
        try {
            disconnect(timeoutMs);
        } finally {
            if (ownTimers != null) ownTimers.shutdownNow();
        }
    }

    /** Tests only: the process dies (no goodbye, no DISCONNECT). */
    void crash(long timeoutMs) throws Exception {
        PhoneLink old;
        synchronized (this) {
            old = link;
            link = null;
        }
        try {
            if (old != null) old.abandon().get(timeoutMs, TimeUnit.MILLISECONDS);
        } finally {
            if (ownTimers != null) ownTimers.shutdownNow();
        }
    }

    private void onAck(Ack ack) {
        outbox.add(ack);
        PhoneLink current = link;
        if (current != null) current.flushOutbox();
        setup.onAck.accept(ack);
    }

    /** The engine's next timer, replacing the last one. */
    private void wakeAt(long at) {
        Wakeups.Pending previous = engineWake.getAndSet(wakeups.schedule(engine::pump, Math.max(0, at - System.currentTimeMillis())));
        if (previous != null) previous.cancel();
    }

    /** After {@link #stop} the engine may still ask for a timer (a late radio result): nothing is left to run it. */
    private static Wakeups ignoringStop(Wakeups inner) {
        return (task, delayMs) -> {
            try {
                return inner.schedule(task, delayMs);
            } catch (RejectedExecutionException stopped) {
                return () -> { };
            }
        };
    }

    /** One per link, so a link that was replaced cannot speak for the current one. */
    private final class LinkEvents implements PhoneLink.Listener {
        /** Set before the link starts, so before its first callback. */
        volatile PhoneLink owner;

        @Override
        public void onStateChanged(PhoneLink.State state, String detail) {
            // Checked where it runs: a state queued on the app's thread before a restart must not describe the new link.
            setup.stateThread.execute(() -> {
                if (owner == link) setup.onState.accept(state, detail);
            });
        }

        @Override
        public void onJobPayload(byte[] payload) {
            engine.onPayload(payload);
            setup.onPayload.accept(payload);
        }

        @Override
        public String onlineStatus() {
            return setup.onlineStatus.get();
        }
    }
}
