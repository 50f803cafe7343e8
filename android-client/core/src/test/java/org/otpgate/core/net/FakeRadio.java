package org.otpgate.core.net;

import java.util.Collections;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.otpgate.core.PhoneEngine;
import org.otpgate.core.SmsJob;
import org.otpgate.core.SmsResultCodes;

/**
 * The SMS radio of the live tests: counts every send per job id (what "never
 * twice" is asserted on) and keeps the bodies, then reports the part sent and
 * delivered to whichever engine is current, as Android's PendingIntents would.
 * Shared by the phones before and after a restart, so its counts span both.
 */
final class FakeRadio implements PhoneEngine.Radio {
    private final Map<String, AtomicInteger> sends = new ConcurrentHashMap<>();
    private final Map<String, String> bodies = new ConcurrentHashMap<>();
    /** Job ids by destination number: an OTP's job id is not the OTP's id, so OTP tests find their job by number. */
    private final Map<String, String> jobTo = new ConcurrentHashMap<>();
    private final ScheduledExecutorService reports = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "fake-radio");
        t.setDaemon(true);
        return t;
    });
    /** The engine results go to; set once the phone is built (the engine needs the radio first). */
    volatile PhoneEngine engine;
    /** When false, sends are counted and never reported: the phone died right after handing the SMS over. */
    volatile boolean reporting = true;

    int sends(String id) {
        AtomicInteger count = sends.get(id);
        return count == null ? 0 : count.get();
    }

    int totalSends() {
        int total = 0;
        for (AtomicInteger count : sends.values()) total += count.get();
        return total;
    }

    /** The id of the job sent to {@code to}, or null. */
    String jobSentTo(String to) {
        return jobTo.get(to);
    }

    String body(String id) {
        return bodies.get(id);
    }

    Map<String, AtomicInteger> all() {
        return Collections.unmodifiableMap(sends);
    }

    @Override
    public Set<Integer> simSlots() {
        return Collections.emptySet();
    }

    @Override
    public int partsFor(SmsJob job) {
        return 1;
    }

    @Override
    public int send(SmsJob job, int parts) {
        sends.computeIfAbsent(job.id, id -> new AtomicInteger()).incrementAndGet();
        bodies.put(job.id, job.body);
        jobTo.put(job.to, job.id);
        if (reporting) {
            reports.schedule(() -> engine.onSendResult(job.id, 0, 1, SmsResultCodes.RESULT_OK), 20, TimeUnit.MILLISECONDS);
            reports.schedule(() -> engine.onDeliveryReport(job.id, 0, 1, 0), 60, TimeUnit.MILLISECONDS);
        }
        return 1;
    }

    void close() {
        reports.shutdownNow();
    }
}
