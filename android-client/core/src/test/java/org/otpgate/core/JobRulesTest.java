package org.otpgate.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;

import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.Test;

public class JobRulesTest {
    private static final long NOW = IsoTime.parse("2030-01-01T12:00:00Z");
    private static final Set<Integer> SLOT_0 = Collections.singleton(0);

    private static JobRules.Memory memory(List<String> handled, List<String> cancelled) {
        return new JobRules.Memory() {
            @Override
            public boolean isHandled(String id) {
                return handled.contains(id);
            }

            @Override
            public boolean isCancelled(String id) {
                return cancelled.contains(id);
            }
        };
    }

    private static final JobRules.Memory EMPTY = memory(Collections.<String>emptyList(), Collections.<String>emptyList());

    private static SmsJob job(long expiresAt, Integer sim) {
        return new SmsJob("job-1", "+254700000001", "hi", expiresAt, sim);
    }

    @Test
    public void sendsAFreshJob() {
        assertEquals(JobRules.Action.SEND, JobRules.onArrival(job(NOW + 60_000, null), EMPTY, NOW, SLOT_0).action);
        assertEquals(JobRules.Action.SEND, JobRules.onArrival(job(NOW + 60_000, 0), EMPTY, NOW, SLOT_0).action);
    }

    @Test
    public void checksForARepeatBeforeAnythingElse() {
        JobRules.Memory handledAndCancelled = memory(Arrays.asList("job-1"), Arrays.asList("job-1"));
        assertEquals(JobRules.Action.DUPLICATE, JobRules.onArrival(job(NOW - 1, 5), handledAndCancelled, NOW, SLOT_0).action);
    }

    @Test
    public void refusesCancelledExpiredAndUnavailableSims() {
        JobRules.Decision cancelled = JobRules.onArrival(job(NOW + 60_000, null), memory(Collections.<String>emptyList(), Arrays.asList("job-1")), NOW, SLOT_0);
        assertEquals(JobRules.Action.REFUSE, cancelled.action);
        assertEquals("CANCELLED", cancelled.error);
        assertEquals("EXPIRED", JobRules.onArrival(job(NOW, null), EMPTY, NOW, SLOT_0).error);
        assertEquals("EXPIRED", JobRules.onArrival(job(NOW - 1, null), EMPTY, NOW, SLOT_0).error);
        assertEquals("SIM_NOT_AVAILABLE", JobRules.onArrival(job(NOW + 60_000, 1), EMPTY, NOW, SLOT_0).error);
        assertEquals("SIM_NOT_AVAILABLE", JobRules.onArrival(job(NOW + 60_000, 0), EMPTY, NOW, Collections.<Integer>emptySet()).error);
        assertEquals(JobRules.Action.SEND, JobRules.onArrival(job(NOW + 60_000, 1), EMPTY, NOW, new HashSet<>(Arrays.asList(0, 1))).action);
    }

    @Test
    public void checksAgainAtTheMomentOfSending() {
        assertNull(JobRules.beforeSend(job(NOW + 1, null), EMPTY, NOW));
        assertEquals("EXPIRED", JobRules.beforeSend(job(NOW, null), EMPTY, NOW));
        assertEquals("CANCELLED", JobRules.beforeSend(job(NOW + 1, null), memory(Collections.<String>emptyList(), Arrays.asList("job-1")), NOW));
    }
}
