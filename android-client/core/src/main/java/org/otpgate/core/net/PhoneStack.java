package org.otpgate.core.net;

import java.io.File;
import java.io.IOException;
import java.security.cert.X509Certificate;
import java.time.LocalDate;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
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
import org.otpgate.core.TextStore;

/**
 * A whole sending phone minus the radio and the screens: the never-twice job
 * ledger, the job engine, the persistent ack outbox and the MQTT link, kept
 * in one folder ({@code ledger.json}, {@code acks.json}, {@code mqtt/} for
 * Paho's persistence). The app gives it SmsManager as the {@link
 * PhoneEngine.Radio}; the live tests give it a fake that records sends.
 */
public final class PhoneStack {
    public final PhoneEngine engine;
    public final AckOutbox outbox;
    public final PhoneLink link;
    private final ScheduledThreadPoolExecutor timers;
    private ScheduledFuture<?> wake;
    /** Tests only: runs on Paho's thread after a payload was handled, before the PUBACK. */
    volatile Consumer<byte[]> afterPayload = payload -> { };

    private PhoneStack(File dir, Provisioning provisioning, X509Certificate ca, PhoneEngine.Radio radio, Supplier<String> onlineStatus,
                       PhoneLink.Options options, int maxPerMinute, BiConsumer<PhoneLink.State, String> states, PhoneEngine.Log log)
            throws IOException, JobLedger.CorruptException {
        TextStore ledgerStore = new FileTextStore(new File(dir, "ledger.json"));
        // A damaged ledger throws: starting empty could send old jobs a second time.
        JobLedger ledger = PhoneEngine.loadLedger(ledgerStore, System.currentTimeMillis());
        outbox = AckOutbox.open(new FileTextStore(new File(dir, "acks.json")));
        timers = new ScheduledThreadPoolExecutor(1, runnable -> {
            Thread t = new Thread(runnable, "otpgate-engine");
            t.setDaemon(true);
            return t;
        });
        timers.setRemoveOnCancelPolicy(true);
        engine = new PhoneEngine(ledger, ledgerStore, radio, this::onAck, this::wakeAt, new PhoneEngine.Clock() {
            @Override
            public long now() {
                return System.currentTimeMillis();
            }

            @Override
            public String today() {
                return LocalDate.now().toString();
            }
        }, log, maxPerMinute, new DailyCount(LocalDate.now().toString(), 0));
        if (options.persistenceDir == null) options.persistenceDir = new File(dir, "mqtt");
        link = new PhoneLink(provisioning, ca, outbox, new PhoneLink.Listener() {
            @Override
            public void onStateChanged(PhoneLink.State state, String detail) {
                states.accept(state, detail);
            }

            @Override
            public void onJobPayload(byte[] payload) {
                engine.onPayload(payload);
                afterPayload.accept(payload);
            }

            @Override
            public String onlineStatus() {
                return onlineStatus.get();
            }
        }, options);
    }

    /** Loads the ledger and the outbox of {@code dir}; {@link #start()} connects. */
    public static PhoneStack open(File dir, Provisioning provisioning, X509Certificate ca, PhoneEngine.Radio radio,
                                  Supplier<String> onlineStatus, PhoneLink.Options options, int maxPerMinute,
                                  BiConsumer<PhoneLink.State, String> states, PhoneEngine.Log log)
            throws IOException, JobLedger.CorruptException {
        return new PhoneStack(dir, provisioning, ca, radio, onlineStatus, options, maxPerMinute, states, log);
    }

    public void start() {
        link.start();
        engine.pump();
    }

    /** Goodbye and a clean disconnect; waits at most {@code timeoutMs}. */
    public void stop(long timeoutMs) throws Exception {
        try {
            link.stop().get(timeoutMs, TimeUnit.MILLISECONDS);
        } finally {
            timers.shutdownNow();
        }
    }

    /** Tests only: the process dies (no goodbye, no DISCONNECT). */
    void crash(long timeoutMs) throws Exception {
        try {
            link.abandon().get(timeoutMs, TimeUnit.MILLISECONDS);
        } finally {
            timers.shutdownNow();
        }
    }

    private void onAck(Ack ack) {
        outbox.add(ack);
        link.flushOutbox();
    }

    private synchronized void wakeAt(long at) {
        if (wake != null) wake.cancel(false);
        if (timers.isShutdown()) return;
        wake = timers.schedule(engine::pump, Math.max(0, at - System.currentTimeMillis()), TimeUnit.MILLISECONDS);
    }
}
