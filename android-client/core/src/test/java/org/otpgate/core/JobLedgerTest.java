package org.otpgate.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import org.junit.Test;

public class JobLedgerTest {
    private static final long NOW = IsoTime.parse("2030-01-01T12:00:00Z");

    @Test
    public void remembersHandledIdsWithTheirLatestStatus() {
        JobLedger ledger = new JobLedger();
        ledger.record("a", AckStatus.RECEIVED, null, NOW + 60_000);
        ledger.setStatus("a", AckStatus.SENT, null);
        ledger.setStatus("unknown", AckStatus.SENT, null);
        assertTrue(ledger.isHandled("a"));
        assertFalse(ledger.isHandled("unknown"));
        assertEquals(AckStatus.SENT, ledger.handled("a").status);
        assertEquals("{\"id\":\"a\",\"status\":\"sent\",\"at\":\"2030-01-01T12:00:00.000Z\"}", ledger.latestAck("a", NOW).toJson());
        ledger.setStatus("a", AckStatus.FAILED, "EXPIRED");
        assertEquals("EXPIRED", ledger.latestAck("a", NOW).error);
        assertNull(ledger.latestAck("unknown", NOW));
    }

    @Test
    public void forgetsHandledIdsAnHourAfterExpiryAndCancelsAfterADay() {
        JobLedger ledger = new JobLedger();
        ledger.record("a", AckStatus.SENT, null, NOW);
        ledger.rememberCancel("c", NOW);
        ledger.prune(NOW + JobLedger.HANDLED_GRACE_MS);
        assertTrue(ledger.isHandled("a"));
        ledger.prune(NOW + JobLedger.HANDLED_GRACE_MS + 1);
        assertFalse(ledger.isHandled("a"));
        assertTrue(ledger.isCancelled("c"));
        ledger.prune(NOW + JobLedger.CANCEL_RETENTION_MS + 1);
        assertFalse(ledger.isCancelled("c"));
    }

    @Test
    public void capsRememberedCancelsOldestFirst() {
        JobLedger ledger = new JobLedger();
        for (int i = 0; i <= JobLedger.MAX_REMEMBERED_CANCELS; i++) ledger.rememberCancel("c" + i, NOW);
        assertEquals(JobLedger.MAX_REMEMBERED_CANCELS, ledger.cancelledCount());
        assertFalse(ledger.isCancelled("c0"));
        assertTrue(ledger.isCancelled("c" + JobLedger.MAX_REMEMBERED_CANCELS));
    }

    @Test
    public void survivesASnapshotRoundTrip() throws Exception {
        JobLedger ledger = new JobLedger();
        ledger.record("a", AckStatus.DELIVERED, null, NOW + 60_000);
        ledger.record("b", AckStatus.FAILED, "RESULT_ERROR_NO_SERVICE", NOW + 60_000);
        ledger.rememberCancel("c", NOW);
        JobLedger back = JobLedger.fromJson(ledger.toJson(), NOW);
        assertEquals(AckStatus.DELIVERED, back.handled("a").status);
        assertEquals("RESULT_ERROR_NO_SERVICE", back.handled("b").error);
        assertTrue(back.isCancelled("c"));
        assertEquals(ledger.toJson(), back.toJson());
    }

    @Test
    public void readsTheSimulatorsStateFileFormat() throws Exception {
        String simulator = "{\"version\":1,\"handled\":{\"job-1\":{\"status\":\"sent\",\"expiresAt\":\"2030-01-01T12:05:00.000Z\"},"
                + "\"job-2\":{\"status\":\"failed\",\"error\":\"CANCELLED\",\"expiresAt\":\"2030-01-01T12:05:00.000Z\"}},"
                + "\"cancelled\":{\"job-2\":\"2030-01-01T11:59:00.000Z\"}}";
        JobLedger ledger = JobLedger.fromJson(simulator, NOW);
        assertTrue(ledger.isHandled("job-1"));
        assertEquals("CANCELLED", ledger.handled("job-2").error);
        assertTrue(ledger.isCancelled("job-2"));
        assertEquals(simulator, ledger.toJson());
    }

    @Test
    public void prunesWhileLoading() throws Exception {
        String old = "{\"version\":1,\"handled\":{\"old\":{\"status\":\"sent\",\"expiresAt\":\"2020-01-01T00:00:00.000Z\"}},\"cancelled\":{}}";
        assertFalse(JobLedger.fromJson(old, NOW).isHandled("old"));
    }

    @Test
    public void refusesADamagedSnapshotRatherThanStartingEmpty() {
        String[] damaged = {
            "", "{", "[]", "{\"version\":2}", "{\"handled\":{}}",
            "{\"version\":1,\"handled\":{\"a\":{\"status\":\"lost\",\"expiresAt\":\"2030-01-01T00:00:00Z\"}}}",
            "{\"version\":1,\"handled\":{\"a\":{\"status\":\"sent\"}}}",
            "{\"version\":1,\"handled\":[]}",
            "{\"version\":1,\"cancelled\":{\"a\":5}}",
        };
        for (String text : damaged) {
            try {
                JobLedger.fromJson(text, NOW);
                fail("loaded " + text);
            } catch (JobLedger.CorruptException expected) {
                // never silently empty
            }
        }
    }
}
