package org.otpgate.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.Before;
import org.junit.Test;

public class PhoneEngineTest {
    private static final long T0 = IsoTime.parse("2030-01-01T12:00:00Z");

    private final AckOutboxTest.MemoryStore store = new AckOutboxTest.MemoryStore();
    private final FakeRadio radio = new FakeRadio();
    private final List<Ack> acks = new ArrayList<>();
    private final List<String> log = new ArrayList<>();
    private long now = T0;
    private Long wakeAt;
    private PhoneEngine engine;

    final class FakeRadio implements PhoneEngine.Radio {
        final List<SmsJob> sent = new ArrayList<>();
        Set<Integer> slots = new HashSet<>(Collections.singletonList(0));
        PhoneEngine.RadioException refuse;
        /** Thrown by send for this job id only, as an SmsManager that breaks mid-way would. */
        String throwOnSendOf;
        RuntimeException slotsThrow;
        RuntimeException partsThrow;
        /** The ledger as it was on disk when each SMS reached the radio. */
        final List<String> ledgerAtSend = new ArrayList<>();

        @Override
        public Set<Integer> simSlots() {
            if (slotsThrow != null) throw slotsThrow;
            return slots;
        }

        @Override
        public int partsFor(SmsJob job) {
            if (partsThrow != null) throw partsThrow;
            return SmsSegments.count(job.body);
        }

        @Override
        public int send(SmsJob job, int parts) throws PhoneEngine.RadioException {
            if (refuse != null) throw refuse;
            if (job.id.equals(throwOnSendOf)) throw new IllegalStateException("the SMS service went away");
            ledgerAtSend.add(store.text);
            sent.add(job);
            return parts;
        }
    }

    private PhoneEngine newEngine(JobLedger ledger, int maxPerMinute) {
        PhoneEngine.Clock clock = new PhoneEngine.Clock() {
            @Override
            public long now() {
                return now;
            }

            @Override
            public String today() {
                return IsoTime.format(now).substring(0, 10);
            }
        };
        return new PhoneEngine(ledger, store, radio, acks::add, at -> wakeAt = at, clock, log::add, maxPerMinute, new DailyCount("", 0));
    }

    @Before
    public void start() {
        engine = newEngine(new JobLedger(), 30);
    }

    private static byte[] job(String id, long expiresAt, String extra) {
        return ("{\"id\":\"" + id + "\",\"to\":\"+254700000001\",\"body\":\"Your code is 123456\",\"expiresAt\":\""
                + IsoTime.format(expiresAt) + "\"" + extra + "}").getBytes(StandardCharsets.UTF_8);
    }

    private static byte[] job(String id) {
        return job(id, T0 + 300_000, "");
    }

    private static byte[] cancel(String id) {
        return ("{\"id\":\"" + id + "\",\"cancel\":true}").getBytes(StandardCharsets.UTF_8);
    }

    private List<String> ackList() {
        List<String> out = new ArrayList<>();
        for (Ack ack : acks) out.add(ack.id + ":" + ack.status.wire + (ack.error != null ? ":" + ack.error : ""));
        return out;
    }

    private List<String> sentIds() {
        List<String> out = new ArrayList<>();
        for (SmsJob job : radio.sent) out.add(job.id);
        return out;
    }

    @Test
    public void sendsAJobAndReportsReceivedSentDelivered() {
        engine.onPayload(job("j1"));
        assertEquals(Arrays.asList("j1"), sentIds());
        engine.onSendResult("j1", 0, 1, SmsResultCodes.RESULT_OK);
        engine.onDeliveryReport("j1", 0, 1, 0);
        assertEquals(Arrays.asList("j1:received", "j1:sent", "j1:delivered"), ackList());
        assertTrue(store.text.contains("\"j1\":{\"status\":\"delivered\""));
        assertEquals(1, engine.status().sentToday);
        assertEquals(0, engine.status().sending);
        for (Ack ack : acks) assertTrue(Ack.parse(ack.toJson()).isOk());
    }

    @Test
    public void writesTheIdDownBeforeTheRadioSeesTheJob() {
        engine.onPayload(job("j1"));
        assertTrue(radio.ledgerAtSend.get(0).contains("\"j1\":{\"status\":\"received\""));
    }

    @Test
    public void neverSendsARepeatedIdAndRestatesItsLatestStatus() {
        engine.onPayload(job("j1"));
        engine.onSendResult("j1", 0, 1, SmsResultCodes.RESULT_OK);
        engine.onPayload(job("j1"));
        engine.onPayload(job("j1", T0 - 1, ""));
        assertEquals(Arrays.asList("j1"), sentIds());
        assertEquals(Arrays.asList("j1:received", "j1:sent", "j1:sent", "j1:sent"), ackList());
    }

    @Test
    public void neverSendsTwiceAcrossARestart() throws Exception {
        engine.onPayload(job("j1"));
        PhoneEngine restarted = newEngine(PhoneEngine.loadLedger(store, now), 30);
        restarted.onPayload(job("j1"));
        assertEquals(Arrays.asList("j1"), sentIds());
        assertEquals(Arrays.asList("j1:received", "j1:received"), ackList());
        // The radio's report outlives the process that sent it.
        restarted.onSendResult("j1", 0, 1, SmsResultCodes.RESULT_OK);
        assertEquals("j1:sent", ackList().get(2));
    }

    @Test
    public void refusesAJobWhoseIdCannotBeWrittenDown() {
        store.broken = true;
        engine.onPayload(job("j1"));
        assertTrue(radio.sent.isEmpty());
        assertEquals(Arrays.asList("j1:failed:STATE_NOT_SAVED"), ackList());
        assertTrue(engine.status().lastError.contains("STATE_NOT_SAVED"));
    }

    @Test
    public void refusesAnExpiredJobWithoutReceivingIt() {
        engine.onPayload(job("j1", T0, ""));
        assertTrue(radio.sent.isEmpty());
        assertEquals(Arrays.asList("j1:failed:EXPIRED"), ackList());
        engine.onPayload(job("j1", T0 + 300_000, ""));
        assertTrue("a refused id stays handled", radio.sent.isEmpty());
    }

    @Test
    public void remembersACancelForAJobNotSeenYet() {
        engine.onPayload(cancel("j1"));
        assertTrue(acks.isEmpty());
        engine.onPayload(job("j1"));
        assertTrue(radio.sent.isEmpty());
        assertEquals(Arrays.asList("j1:failed:CANCELLED"), ackList());
    }

    @Test
    public void cancelsAQueuedJob() {
        engine.setMaxPerMinute(1);
        engine.onPayload(job("j1"));
        engine.onPayload(job("j2"));
        engine.onPayload(cancel("j2"));
        now += 60_000;
        engine.pump();
        assertEquals(Arrays.asList("j1"), sentIds());
        assertEquals(Arrays.asList("j1:received", "j2:received", "j2:failed:CANCELLED"), ackList());
    }

    @Test
    public void aCancelAfterSendingIsTooLate() {
        engine.onPayload(job("j1"));
        engine.onPayload(cancel("j1"));
        assertEquals(Arrays.asList("j1:received"), ackList());
        assertTrue(log.get(log.size() - 1).contains("too late"));
    }

    @Test
    public void waitsForTheSlidingWindowAndAsksToBeWoken() {
        engine.setMaxPerMinute(2);
        engine.onPayload(job("j1"));
        now += 1_000;
        engine.onPayload(job("j2"));
        engine.onPayload(job("j3"));
        assertEquals(Arrays.asList("j1", "j2"), sentIds());
        assertEquals(1, engine.status().queued);
        assertEquals(Long.valueOf(T0 + 60_000), wakeAt);
        now = T0 + 60_000;
        engine.pump();
        assertEquals(Arrays.asList("j1", "j2", "j3"), sentIds());
    }

    @Test
    public void failsAJobThatExpiresWhileItWaits() {
        engine.setMaxPerMinute(1);
        engine.onPayload(job("j1"));
        engine.onPayload(job("j2", T0 + 30_000, ""));
        assertEquals(Long.valueOf(T0 + 30_000), wakeAt);
        now = T0 + 30_000;
        engine.pump();
        assertEquals(Arrays.asList("j1"), sentIds());
        assertEquals("j2:failed:EXPIRED", ackList().get(ackList().size() - 1));
        assertEquals(0, engine.status().queued);
    }

    @Test
    public void stopFailsEveryJobWaitingForTheWindowAndWritesItDown() {
        engine.setMaxPerMinute(1);
        engine.onPayload(job("j1"));
        engine.onPayload(job("j2"));
        engine.onPayload(job("j3"));
        assertEquals(2, engine.stopSending());
        assertEquals(Arrays.asList("j1:received", "j2:received", "j3:received", "j2:failed:STOPPED", "j3:failed:STOPPED"), ackList());
        for (Ack ack : acks) assertTrue("the gateway accepts " + ack, Ack.parse(ack.toJson()).isOk());
        assertTrue(store.text, store.text.contains("\"j2\":{\"status\":\"failed\",\"error\":\"STOPPED\""));
        assertTrue(store.text, store.text.contains("\"j3\":{\"status\":\"failed\",\"error\":\"STOPPED\""));
        assertEquals(0, engine.status().queued);
        assertTrue(engine.status().lastError, engine.status().lastError.contains("STOPPED"));
        // j1 was with the radio already: its real outcome still counts.
        engine.onSendResult("j1", 0, 1, SmsResultCodes.RESULT_OK);
        assertEquals("j1:sent", ackList().get(ackList().size() - 1));
    }

    @Test
    public void aWakeupOrANewRateAfterStopSendsNothing() {
        engine.setMaxPerMinute(1);
        engine.onPayload(job("j1"));
        engine.onPayload(job("j2"));
        assertEquals(Long.valueOf(T0 + 60_000), wakeAt);
        engine.stopSending();
        now = T0 + 60_000;
        engine.pump(); // the timer asked for before the stop
        engine.setMaxPerMinute(30); // the app's restart for new settings, while stopped
        assertEquals(Arrays.asList("j1"), sentIds());
    }

    @Test
    public void aReloadedLedgerNeverSendsAJobFailedOnStop() throws Exception {
        engine.setMaxPerMinute(1);
        engine.onPayload(job("j1"));
        engine.onPayload(job("j2"));
        engine.stopSending();
        PhoneEngine restarted = newEngine(PhoneEngine.loadLedger(store, now), 30);
        acks.clear();
        restarted.onPayload(job("j2")); // the broker redelivers it to the restarted process
        assertEquals(Arrays.asList("j1"), sentIds());
        assertEquals(Arrays.asList("j2:failed:STOPPED"), ackList());
    }

    @Test
    public void aJobArrivingWhileStoppedIsFailedAndStartingAgainSendsNewJobs() {
        engine.stopSending();
        engine.onPayload(job("late"));
        assertTrue(radio.sent.isEmpty());
        assertEquals(Arrays.asList("late:failed:STOPPED"), ackList());
        assertTrue(store.text.contains("\"late\":{\"status\":\"failed\",\"error\":\"STOPPED\""));
        engine.onPayload(job("expired", T0, ""));
        assertEquals("a better reason wins", "expired:failed:EXPIRED", ackList().get(1));
        engine.startSending();
        engine.onPayload(job("late"));
        engine.onPayload(job("next"));
        assertEquals("a job failed on stop stays failed", Arrays.asList("next"), sentIds());
        assertEquals("late:failed:STOPPED", ackList().get(2));
    }

    @Test
    public void aRadioThatThrowsFailsThatJobAndTheQueueGoesOn() {
        engine.setMaxPerMinute(1);
        engine.onPayload(job("j1"));
        engine.onPayload(job("j2"));
        engine.onPayload(job("j3"));
        radio.throwOnSendOf = "j2";
        now += 60_000;
        engine.pump(); // must not throw: on the phone this runs on the gateway's thread, an alarm or Paho's
        assertEquals(Arrays.asList("j1", "j3"), sentIds());
        assertEquals(Arrays.asList("j1:received", "j2:received", "j3:received", "j2:failed:" + PhoneEngine.RADIO_ERROR), ackList());
        assertTrue(store.text.contains("\"j2\":{\"status\":\"failed\",\"error\":\"" + PhoneEngine.RADIO_ERROR + "\""));
        assertEquals(0, engine.status().queued);
    }

    @Test
    public void aRadioThatCannotListItsSimsOrCountPartsStillSendsJobsThatNameNoSim() {
        radio.slotsThrow = new SecurityException("READ_PHONE_STATE was revoked");
        radio.partsThrow = new IllegalStateException("no SmsManager for this SIM");
        engine.onPayload(job("plain"));
        engine.onPayload(job("on-0", T0 + 300_000, ",\"sim\":0"));
        assertEquals(Arrays.asList("plain"), sentIds());
        assertEquals(Arrays.asList("plain:received", "on-0:failed:SIM_NOT_AVAILABLE"), ackList());
    }

    @Test
    public void choosesOnlySimsThePhoneHas() {
        radio.slots = new HashSet<>(Arrays.asList(0, 1));
        engine.onPayload(job("on-1", T0 + 300_000, ",\"sim\":1"));
        engine.onPayload(job("on-2", T0 + 300_000, ",\"sim\":2"));
        assertEquals(Arrays.asList("on-1"), sentIds());
        assertEquals(Integer.valueOf(1), radio.sent.get(0).sim);
        assertEquals("on-2:failed:SIM_NOT_AVAILABLE", ackList().get(1));
    }

    @Test
    public void reportsAndroidsResultCodeAsTheAckError() {
        engine.onPayload(job("j1"));
        engine.onSendResult("j1", 0, 1, SmsResultCodes.RESULT_ERROR_NO_SERVICE);
        assertEquals(Arrays.asList("j1:received", "j1:failed:RESULT_ERROR_NO_SERVICE"), ackList());
        assertTrue(store.text.contains("RESULT_ERROR_NO_SERVICE"));
        engine.onSendResult("j1", 0, 1, SmsResultCodes.RESULT_OK);
        assertEquals("a verdict is never contradicted", 2, acks.size());
    }

    @Test
    public void failsTheJobWhenTheRadioRefusesItAndKeepsTheSlot() {
        engine.setMaxPerMinute(1);
        radio.refuse = new PhoneEngine.RadioException("NO_SMS_PERMISSION", "SEND_SMS not granted");
        engine.onPayload(job("j1"));
        radio.refuse = null;
        engine.onPayload(job("j2"));
        assertEquals(Arrays.asList("j1:received", "j1:failed:NO_SMS_PERMISSION", "j2:received"), ackList());
        assertEquals(Arrays.asList("j2"), sentIds());
    }

    @Test
    public void reportsALongMessageSentAndDeliveredOnlyWhenEveryPartIs() {
        StringBuilder body = new StringBuilder();
        for (int i = 0; i < 200; i++) body.append('x');
        engine.onPayload(("{\"id\":\"long\",\"to\":\"+254700000001\",\"body\":\"" + body + "\",\"expiresAt\":\"2030-01-01T13:00:00Z\"}")
                .getBytes(StandardCharsets.UTF_8));
        engine.onSendResult("long", 1, 2, SmsResultCodes.RESULT_OK);
        assertEquals(Arrays.asList("long:received"), ackList());
        engine.onSendResult("long", 0, 2, SmsResultCodes.RESULT_OK);
        engine.onDeliveryReport("long", 0, 2, 0);
        engine.onDeliveryReport("long", 0, 2, 0x20);
        assertEquals(Arrays.asList("long:received", "long:sent"), ackList());
        engine.onDeliveryReport("long", 1, 2, 0);
        assertEquals(Arrays.asList("long:received", "long:sent", "long:delivered"), ackList());
    }

    @Test
    public void countsEveryPartAgainstTheWindow() {
        engine.setMaxPerMinute(3);
        StringBuilder body = new StringBuilder();
        for (int i = 0; i < 200; i++) body.append('x');
        engine.onPayload(("{\"id\":\"long\",\"to\":\"+254700000001\",\"body\":\"" + body + "\",\"expiresAt\":\"2030-01-01T13:00:00Z\"}")
                .getBytes(StandardCharsets.UTF_8));
        engine.onPayload(job("short"));
        engine.onPayload(job("short-2"));
        assertEquals(Arrays.asList("long", "short"), sentIds());
    }

    @Test
    public void showsAFailedDeliveryWithoutAckingIt() {
        engine.onPayload(job("j1"));
        engine.onSendResult("j1", 0, 1, SmsResultCodes.RESULT_OK);
        engine.onDeliveryReport("j1", 0, 1, 0x41);
        assertEquals(Arrays.asList("j1:received", "j1:sent"), ackList());
        assertTrue(engine.status().lastError.startsWith("DELIVERY_FAILED"));
    }

    @Test
    public void ignoresInvalidPayloadsAndStrayReports() {
        engine.onPayload("{not json".getBytes(StandardCharsets.UTF_8));
        engine.onPayload("{\"id\":\"j1\",\"to\":\"254700000001\",\"body\":\"x\",\"expiresAt\":\"2030-01-01T13:00:00Z\"}".getBytes(StandardCharsets.UTF_8));
        engine.onSendResult("ghost", 0, 1, SmsResultCodes.RESULT_OK);
        engine.onDeliveryReport("ghost", 0, 1, 0);
        assertTrue(acks.isEmpty());
        assertTrue(radio.sent.isEmpty());
        assertTrue(log.get(0).startsWith("ignored an invalid payload"));
    }

    @Test
    public void keepsTheRateBetweenOneAndAndroidsThirty() {
        engine.setMaxPerMinute(100);
        assertEquals(30, engine.status().maxPerMinute);
        engine.setMaxPerMinute(0);
        assertEquals(1, engine.status().maxPerMinute);
        assertEquals(30, PhoneEngine.clampRate(31));
    }

    @Test
    public void neverLogsTheNumberOrTheCode() {
        engine.onPayload(job("j1"));
        engine.onSendResult("j1", 0, 1, SmsResultCodes.RESULT_OK);
        for (String line : log) {
            assertFalse(line, line.contains("254700000001"));
            assertFalse(line, line.contains("123456"));
        }
    }

    @Test
    public void startsWithAnEmptyLedgerOnlyWhenThereIsNone() throws Exception {
        assertNull(store.text);
        assertEquals(0, PhoneEngine.loadLedger(store, now).handledCount());
        store.text = "{damaged";
        try {
            PhoneEngine.loadLedger(store, now);
            throw new AssertionError("loaded a damaged ledger");
        } catch (JobLedger.CorruptException expected) {
            // the app refuses to start sending
        }
    }
}
