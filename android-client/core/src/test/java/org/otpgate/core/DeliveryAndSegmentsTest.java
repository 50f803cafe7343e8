package org.otpgate.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import org.junit.Test;

public class DeliveryAndSegmentsTest {
    private static String repeat(String s, int n) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < n; i++) out.append(s);
        return out.toString();
    }

    @Test
    public void classifiesTpStatus() {
        assertEquals(DeliveryReports.Outcome.DELIVERED, DeliveryReports.classify(0x00));
        assertEquals(DeliveryReports.Outcome.DELIVERED, DeliveryReports.classify(0x02));
        assertEquals(DeliveryReports.Outcome.PENDING, DeliveryReports.classify(0x20));
        assertEquals(DeliveryReports.Outcome.PENDING, DeliveryReports.classify(0x3F));
        assertEquals(DeliveryReports.Outcome.FAILED, DeliveryReports.classify(0x40));
        assertEquals(DeliveryReports.Outcome.FAILED, DeliveryReports.classify(0x60));
        assertEquals(DeliveryReports.Outcome.FAILED, DeliveryReports.classify(-1));
    }

    @Test
    public void countsGsmSeptets() {
        assertEquals(1, SmsSegments.count("Your code is 123456"));
        assertEquals(1, SmsSegments.count(repeat("a", 160)));
        assertEquals(2, SmsSegments.count(repeat("a", 161)));
        assertEquals(2, SmsSegments.count(repeat("a", 306)));
        assertEquals(3, SmsSegments.count(repeat("a", 307)));
        assertEquals(2, SmsSegments.count(repeat("€", 81)));
        assertEquals(1, SmsSegments.count(repeat("€", 80)));
    }

    @Test
    public void fallsBackToUcs2() {
        assertEquals(1, SmsSegments.count(repeat("ж", 70)));
        assertEquals(2, SmsSegments.count(repeat("ж", 71)));
        assertEquals(3, SmsSegments.count(repeat("ж", 135)));
        assertEquals(2, SmsSegments.count(repeat("a", 69) + "😀"));
    }

    @Test
    public void tracksPartsToOneVerdict() {
        MultipartProgress progress = new MultipartProgress(3, 0);
        assertEquals(MultipartProgress.Verdict.NONE, progress.onSent(0, true));
        assertEquals(MultipartProgress.Verdict.NONE, progress.onSent(0, true));
        assertEquals(MultipartProgress.Verdict.NONE, progress.onSent(1, true));
        assertEquals(MultipartProgress.Verdict.SENT, progress.onSent(2, true));
        assertEquals(MultipartProgress.Verdict.NONE, progress.onSent(2, false));
        assertFalse(progress.onDelivered(0));
        assertFalse(progress.onDelivered(7));
        assertFalse(progress.onDelivered(1));
        assertTrue(progress.onDelivered(2));
        assertFalse(progress.onDelivered(2));
        assertTrue(progress.isDone());
    }

    @Test
    public void failsAtTheFirstFailedPart() {
        MultipartProgress progress = new MultipartProgress(2, 0);
        assertEquals(MultipartProgress.Verdict.FAILED, progress.onSent(1, false));
        assertEquals(MultipartProgress.Verdict.NONE, progress.onSent(0, true));
        assertTrue(progress.isDone());
        MultipartProgress undelivered = new MultipartProgress(1, 0);
        undelivered.onSent(0, true);
        assertTrue(undelivered.onDeliveryFailed());
        assertFalse(undelivered.onDeliveryFailed());
    }
}
