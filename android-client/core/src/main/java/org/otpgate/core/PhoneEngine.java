package org.otpgate.core;

import java.io.IOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The phone's job handling, free of Android and MQTT (phone.ts's queue and
 * acks): payloads in, SMS to the {@link Radio}, acks to the {@link AckSink}.
 *
 * <ul>
 *   <li>A job's id is written to the ledger, durably, BEFORE the job can be
 *       sent; if that fails the job is refused (STATE_NOT_SAVED). A crash can
 *       lose an SMS (the gateway fails over) but never send one twice.</li>
 *   <li>A repeated id is never sent again; its latest status is restated.</li>
 *   <li>Expiry and cancels are checked on arrival and again at the moment of
 *       sending; a cancel for an unseen id is remembered.</li>
 *   <li>Jobs go out in arrival order within the sliding per-minute window.</li>
 *   <li>{@link #stopSending} settles every job not yet with the radio as
 *       failed (STOPPED); nothing is sent again until {@link #startSending}.</li>
 * </ul>
 *
 * Every public method is synchronized: MQTT callbacks, SMS result broadcasts
 * and timers arrive on different threads.
 */
public final class PhoneEngine {
    /** The SMS hardware, as the engine needs it. */
    public interface Radio {
        /** SIM slots that can send now; empty when unknown (no READ_PHONE_STATE). */
        Set<Integer> simSlots();

        /** How many SMS this job's body takes on its SIM. */
        int partsFor(SmsJob job);

        /**
         * Hands the SMS to the system; results come back through onSendResult
         * and onDeliveryReport. Returns the number of parts actually used, which
         * may differ from {@code parts} if the SIM changed in between.
         */
        int send(SmsJob job, int parts) throws RadioException;
    }

    public static final class RadioException extends Exception {
        /** A stable code for the failed ack, e.g. NO_SMS_PERMISSION. */
        public final String code;

        public RadioException(String code, String message) {
            super(message);
            this.code = code;
        }
    }

    public interface AckSink {
        void ack(Ack ack);
    }

    /** The engine wants {@link #pump()} called at that time; a later request replaces an earlier one. */
    public interface Scheduler {
        void wakeAt(long epochMs);
    }

    public interface Clock {
        long now();

        /** The local date, e.g. "2030-01-31", for "sent today". */
        String today();
    }

    public interface Log {
        /** Lines never carry a full number or a body's digits. */
        void line(String text);
    }

    /** What the status screen shows. */
    public static final class Status {
        public final int queued;
        public final int sending;
        public final int sentToday;
        public final String lastError;
        public final int maxPerMinute;

        Status(int queued, int sending, int sentToday, String lastError, int maxPerMinute) {
            this.queued = queued;
            this.sending = sending;
            this.sentToday = sentToday;
            this.lastError = lastError;
            this.maxPerMinute = maxPerMinute;
        }
    }

    /**
     * The failed ack's code when the radio threw something it does not declare (on a phone: a SecurityException or
     * an OEM's IllegalStateException from SmsManager). Said at once, so the gateway fails over now rather than after
     * its sent timeout, and the exception does not escape into whichever thread pumped.
     */
    public static final String RADIO_ERROR = "RADIO_ERROR";

    private static final long PRUNE_EVERY_MS = 60_000;
    private static final long WINDOW_MS = 60_000;

    private final JobLedger ledger;
    private final TextStore ledgerStore;
    private final Radio radio;
    private final AckSink acks;
    private final Scheduler scheduler;
    private final Clock clock;
    private final Log log;
    private final SendWindow window;
    private final ArrayDeque<Queued> queue = new ArrayDeque<>();
    private final Map<String, MultipartProgress> inFlight = new HashMap<>();
    private final DailyCount sentToday;
    private String lastError;
    private long lastPrune;
    /** Between stopSending and startSending. */
    private boolean stopped;

    private static final class Queued {
        final SmsJob job;
        final int parts;

        Queued(SmsJob job, int parts) {
            this.job = job;
            this.parts = parts;
        }
    }

    public PhoneEngine(JobLedger ledger, TextStore ledgerStore, Radio radio, AckSink acks, Scheduler scheduler,
                       Clock clock, Log log, int maxPerMinute, DailyCount sentToday) {
        this.ledger = ledger;
        this.ledgerStore = ledgerStore;
        this.radio = radio;
        this.acks = acks;
        this.scheduler = scheduler;
        this.clock = clock;
        this.log = log;
        this.window = new SendWindow(clampRate(maxPerMinute), WINDOW_MS);
        this.sentToday = sentToday;
    }

    /** The ledger a previous run left, or an empty one. A damaged file throws: starting empty could send old jobs again. */
    public static JobLedger loadLedger(TextStore store, long now) throws IOException, JobLedger.CorruptException {
        String text = store.read();
        return text == null ? new JobLedger() : JobLedger.fromJson(text, now);
    }

    /** Between 1 and Android's own 30: above it Android would stop and ask the (absent) user. */
    public static int clampRate(int maxPerMinute) {
        return Math.max(1, Math.min(SendWindow.ANDROID_DEFAULT_MAX_PER_MINUTE, maxPerMinute));
    }

    public synchronized void setMaxPerMinute(int maxPerMinute) {
        window.setMax(clampRate(maxPerMinute));
        pump();
    }

    /**
     * The phone stops being a gateway: the user's Stop or the service's end, not a lost network nor a link restart for
     * new settings (those keep the queue). A job still waiting for the send window could otherwise go out later, after
     * the gateway's sent timeout had sent the code through another route. Each is failed with STOPPED now: in the
     * ledger first, so no engine (not even one that reloads it) sends it, then acked, so the gateway fails over at
     * once. Jobs already with the radio keep their real outcome. Until {@link #startSending} nothing is sent and a job
     * that arrives is refused with STOPPED too: queued, it would wait for a start that may come too late.
     *
     * @return how many waiting jobs were failed
     */
    public synchronized int stopSending() {
        stopped = true;
        if (queue.isEmpty()) return 0;
        long now = clock.now();
        List<Queued> waiting = new ArrayList<>(queue);
        queue.clear();
        for (Queued entry : waiting) ledger.setStatus(entry.job.id, AckStatus.FAILED, JobRules.STOPPED);
        // Unsaved, the file still says "received": a restart restates that but still never sends (the queue is gone).
        save();
        for (Queued entry : waiting) fail(entry.job.id, JobRules.STOPPED, now);
        log.line("stopped: " + waiting.size() + " waiting job" + (waiting.size() == 1 ? "" : "s") + " failed as " + JobRules.STOPPED);
        return waiting.size();
    }

    /** Accepts and sends jobs again after {@link #stopSending}; a no-op otherwise, apart from sending what may go now. */
    public synchronized void startSending() {
        stopped = false;
        pump();
    }

    public synchronized Status status() {
        return new Status(queue.size(), inFlight.size(), sentToday.get(clock.today()), lastError, window.max());
    }

    // --- arrivals -------------------------------------------------------------

    /** A payload from {@code sms/out/<id>}. Returns once the job is recorded, so the MQTT PUBACK can follow. */
    public synchronized void onPayload(byte[] payload) {
        Parsed<OutboundMessage> parsed = PayloadRules.parseOutbound(payload);
        if (!parsed.isOk()) {
            log.line("ignored an invalid payload: " + parsed.reason());
            return;
        }
        OutboundMessage message = parsed.value();
        if (message.kind == OutboundMessage.Kind.CANCEL) {
            onCancel(message.id);
        } else {
            onJob(message.job);
        }
    }

    private void onJob(SmsJob job) {
        long now = clock.now();
        pruneNow(now);
        log.line("job " + job.id + " received: to " + Redact.phoneNumber(job.to) + ", \"" + Redact.digits(job.body) + "\"");
        JobRules.Decision decision = JobRules.onArrival(job, ledger, now, simSlots());
        switch (decision.action) {
            case DUPLICATE: {
                // Never sent again. Restating the latest status is harmless (the gateway
                // ignores repeated acks) and repairs an ack lost with a previous run.
                Ack latest = ledger.latestAck(job.id, now);
                log.line("job " + job.id + " is a repeat; not sent again");
                if (latest != null) acks.ack(latest);
                return;
            }
            case REFUSE:
                refuse(job, decision.error, now);
                return;
            default:
                break;
        }
        if (stopped) {
            refuse(job, JobRules.STOPPED, now);
            return;
        }
        ledger.record(job.id, AckStatus.RECEIVED, null, job.expiresAt);
        // Written down before any chance of sending, so no restart can send this id again.
        if (!save()) {
            ledger.setStatus(job.id, AckStatus.FAILED, JobRules.STATE_NOT_SAVED);
            fail(job.id, JobRules.STATE_NOT_SAVED, now);
            return;
        }
        acks.ack(Ack.of(job.id, AckStatus.RECEIVED, now));
        queue.addLast(new Queued(job, Math.max(1, partsFor(job))));
        pump();
    }

    /** Never sent: written down as failed, so a redelivery restates the verdict. */
    private void refuse(SmsJob job, String error, long now) {
        ledger.record(job.id, AckStatus.FAILED, error, job.expiresAt);
        save();
        fail(job.id, error, now);
    }

    private void onCancel(String id) {
        long now = clock.now();
        ledger.rememberCancel(id, now);
        Queued waiting = null;
        for (Queued entry : queue) {
            if (entry.job.id.equals(id)) waiting = entry;
        }
        if (waiting != null) {
            queue.remove(waiting);
            setStatus(id, AckStatus.FAILED, JobRules.CANCELLED);
            fail(id, JobRules.CANCELLED, now);
            pump();
        } else if (ledger.isHandled(id)) {
            log.line("cancel for job " + id + " came too late: already " + ledger.handled(id).status.wire);
        } else {
            log.line("cancel for job " + id + " remembered; the job has not arrived");
        }
        save();
    }

    // --- sending --------------------------------------------------------------

    /** Sends what may go now, fails what expired, and asks to be woken when the next job can go; nothing while stopped. */
    public synchronized void pump() {
        if (stopped) return;
        long now = clock.now();
        for (Iterator<Queued> it = queue.iterator(); it.hasNext(); ) {
            Queued entry = it.next();
            if (now >= entry.job.expiresAt) {
                it.remove();
                setStatus(entry.job.id, AckStatus.FAILED, JobRules.EXPIRED);
                fail(entry.job.id, JobRules.EXPIRED, now);
            }
        }
        while (!queue.isEmpty()) {
            Queued head = queue.peekFirst();
            long readyAt = window.nextSlotAt(now, head.parts);
            if (readyAt > now) {
                long firstExpiry = Long.MAX_VALUE;
                for (Queued entry : queue) firstExpiry = Math.min(firstExpiry, entry.job.expiresAt);
                scheduler.wakeAt(Math.min(readyAt, firstExpiry));
                return;
            }
            queue.removeFirst();
            transmit(head, now);
        }
    }

    private void transmit(Queued entry, long now) {
        SmsJob job = entry.job;
        String problem = JobRules.beforeSend(job, ledger, now);
        if (problem == null && job.sim != null && !simSlots().contains(job.sim)) problem = JobRules.SIM_NOT_AVAILABLE;
        if (problem != null) {
            setStatus(job.id, AckStatus.FAILED, problem);
            fail(job.id, problem, now);
            return;
        }
        int parts;
        try {
            parts = Math.max(1, radio.send(job, entry.parts));
        } catch (RadioException e) {
            setStatus(job.id, AckStatus.FAILED, e.code);
            fail(job.id, e.code, now);
            return;
        } catch (RuntimeException e) {
            log.line("job " + job.id + ": the radio failed: " + e);
            setStatus(job.id, AckStatus.FAILED, RADIO_ERROR);
            fail(job.id, RADIO_ERROR, now);
            return;
        }
        window.record(now, parts);
        inFlight.put(job.id, new MultipartProgress(parts, job.expiresAt));
        log.line("job " + job.id + " handed to the radio (" + parts + " part" + (parts == 1 ? "" : "s") + ")");
    }

    /** The radio's SIM slots; none when it cannot say (then only jobs that name no SIM go out). */
    private Set<Integer> simSlots() {
        try {
            return radio.simSlots();
        } catch (RuntimeException e) {
            log.line("the radio cannot list its SIMs: " + e);
            return Collections.emptySet();
        }
    }

    /** The radio's count of parts, else our own: a count that is off only changes how the send window paces the job. */
    private int partsFor(SmsJob job) {
        try {
            return radio.partsFor(job);
        } catch (RuntimeException e) {
            log.line("job " + job.id + ": the radio cannot count its parts: " + e);
            return SmsSegments.count(job.body);
        }
    }

    // --- results from Android -------------------------------------------------

    /** A part's "sent" PendingIntent fired with {@code resultCode}. */
    public synchronized void onSendResult(String id, int part, int parts, int resultCode) {
        long now = clock.now();
        MultipartProgress progress = progressFor(id, parts, AckStatus.RECEIVED);
        if (progress == null) return;
        boolean ok = SmsResultCodes.isSuccess(resultCode);
        MultipartProgress.Verdict verdict = progress.onSent(part, ok);
        if (verdict == MultipartProgress.Verdict.SENT) {
            setStatus(id, AckStatus.SENT, null);
            sentToday.increment(clock.today());
            log.line("job " + id + " sent");
            acks.ack(Ack.of(id, AckStatus.SENT, now));
        } else if (verdict == MultipartProgress.Verdict.FAILED) {
            String error = SmsResultCodes.errorName(resultCode);
            setStatus(id, AckStatus.FAILED, error);
            fail(id, error, now);
        }
        if (progress.isDone()) inFlight.remove(id);
    }

    /**
     * A part's delivery report, with its TP-Status. A permanent delivery
     * failure is shown locally but not acked: the gateway settles a job at
     * "sent" and a "failed" after it would ask it to fail over, sending twice.
     */
    public synchronized void onDeliveryReport(String id, int part, int parts, int tpStatus) {
        long now = clock.now();
        MultipartProgress progress = progressFor(id, parts, AckStatus.SENT);
        if (progress == null) return;
        DeliveryReports.Outcome outcome = DeliveryReports.classify(tpStatus);
        if (outcome == DeliveryReports.Outcome.DELIVERED && progress.onDelivered(part)) {
            setStatus(id, AckStatus.DELIVERED, null);
            log.line("job " + id + " delivered");
            acks.ack(Ack.of(id, AckStatus.DELIVERED, now));
        } else if (outcome == DeliveryReports.Outcome.FAILED && progress.onDeliveryFailed()) {
            lastError = "DELIVERY_FAILED (TP-Status " + tpStatus + ") for job " + id;
            log.line("job " + id + " was sent but will not be delivered: TP-Status " + tpStatus);
        }
        if (progress.isDone()) inFlight.remove(id);
    }

    /** The job's part tracker; rebuilt from the ledger when a result outlives the process that sent it. */
    private MultipartProgress progressFor(String id, int parts, AckStatus expected) {
        MultipartProgress progress = inFlight.get(id);
        if (progress != null) return progress;
        JobLedger.Entry entry = ledger.handled(id);
        if (entry == null || entry.status != expected) {
            log.line("ignored a late radio report for job " + id);
            return null;
        }
        progress = new MultipartProgress(parts, entry.expiresAt);
        inFlight.put(id, progress);
        return progress;
    }

    // --- bookkeeping ----------------------------------------------------------

    private void fail(String id, String error, long now) {
        lastError = error + " (job " + id + ")";
        log.line("job " + id + " failed: " + error);
        acks.ack(Ack.failed(id, error, now));
    }

    private void setStatus(String id, AckStatus status, String error) {
        ledger.setStatus(id, status, error);
        save();
    }

    /** False when the ledger could not be written. */
    private boolean save() {
        try {
            ledgerStore.write(ledger.toJson());
            return true;
        } catch (IOException e) {
            lastError = "could not save the job ledger: " + e.getMessage();
            log.line(lastError);
            return false;
        }
    }

    private void pruneNow(long now) {
        if (now - lastPrune < PRUNE_EVERY_MS) return;
        lastPrune = now;
        ledger.prune(now);
        // Parts whose reports never came (not every carrier sends delivery reports).
        inFlight.values().removeIf(progress -> progress.expiresAt + JobLedger.HANDLED_GRACE_MS < now);
    }
}
