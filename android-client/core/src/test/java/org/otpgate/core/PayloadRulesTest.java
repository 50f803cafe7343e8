package org.otpgate.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import java.nio.charset.StandardCharsets;
import org.junit.Test;

public class PayloadRulesTest {
    private static final String JOB = "{\"id\":\"job-1\",\"to\":\"+254700000001\",\"body\":\"Your code is 123456\",\"expiresAt\":\"2030-01-01T12:05:00Z\"";

    private static Parsed<OutboundMessage> parse(String text) {
        return PayloadRules.parseOutbound(text);
    }

    private static String job(String extra) {
        return JOB + extra + "}";
    }

    private static String repeat(String s, int n) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < n; i++) out.append(s);
        return out.toString();
    }

    private static void invalid(String text, String reasonPart) {
        Parsed<OutboundMessage> parsed = parse(text);
        assertFalse(text, parsed.isOk());
        assertTrue(parsed.reason() + " should mention " + reasonPart, parsed.reason().contains(reasonPart));
    }

    @Test
    public void readsAJobWithItsExpiryInEpochMs() {
        Parsed<OutboundMessage> parsed = parse(job(""));
        assertTrue(parsed.reason(), parsed.isOk());
        SmsJob job = parsed.value().job;
        assertEquals(OutboundMessage.Kind.JOB, parsed.value().kind);
        assertEquals("job-1", job.id);
        assertEquals("+254700000001", job.to);
        assertEquals("Your code is 123456", job.body);
        assertEquals(IsoTime.parse("2030-01-01T12:05:00Z").longValue(), job.expiresAt);
        assertNull(job.sim);
    }

    @Test
    public void keepsASimSlotWrittenAsAnyWholeNumber() {
        assertEquals(Integer.valueOf(1), parse(job(",\"sim\":1")).value().job.sim);
        assertEquals(Integer.valueOf(7), parse(job(",\"sim\":7.0")).value().job.sim);
        assertEquals(Integer.valueOf(0), parse(job(",\"sim\":-0")).value().job.sim);
        assertEquals(Integer.valueOf(1), parse(job(",\"sim\":1e0")).value().job.sim);
    }

    @Test
    public void refusesOtherSims() {
        for (String sim : new String[] {"8", "-1", "1.5", "\"1\"", "null", "true", "[0]", "1e400"}) {
            invalid(job(",\"sim\":" + sim), "sim");
        }
    }

    @Test
    public void readsACancelEvenFromBytesAndEvenWithJobFields() {
        Parsed<OutboundMessage> cancel = PayloadRules.parseOutbound("{\"id\":\"job-9\",\"cancel\":true}".getBytes(StandardCharsets.UTF_8));
        assertEquals(OutboundMessage.Kind.CANCEL, cancel.value().kind);
        assertEquals("job-9", cancel.value().id);
        assertEquals(OutboundMessage.Kind.CANCEL, parse(job(",\"cancel\":true")).value().kind);
    }

    @Test
    public void treatsCancelFalseAsAJobThatMustBeComplete() {
        assertEquals(OutboundMessage.Kind.JOB, parse(job(",\"cancel\":false")).value().kind);
        invalid("{\"id\":\"a\",\"cancel\":false}", "to");
        invalid("{\"id\":\"a\",\"cancel\":\"yes\"}", "cancel must be true");
        invalid(job(",\"cancel\":null"), "cancel must be true");
        invalid(job(",\"cancel\":1"), "cancel must be true");
    }

    @Test
    public void refusesWhatIsNotAJsonObject() {
        invalid("{not json", "not JSON");
        invalid("[1,2]", "not a JSON object");
        invalid("null", "not a JSON object");
        invalid("\"job\"", "not a JSON object");
        invalid("{'id':'a','cancel':true}", "not JSON");
    }

    @Test
    public void refusesBadIds() {
        invalid("{\"cancel\":true}", "id");
        invalid("{\"id\":\"\",\"cancel\":true}", "id");
        invalid("{\"id\":5,\"cancel\":true}", "id");
        invalid("{\"id\":\"a\\u0000b\",\"cancel\":true}", "id");
        invalid("{\"id\":\"a\\nb\",\"cancel\":true}", "id");
        invalid("{\"id\":\"a\\u007fb\",\"cancel\":true}", "id");
        assertTrue(parse("{\"id\":\"" + repeat("x", 128) + "\",\"cancel\":true}").isOk());
        invalid("{\"id\":\"" + repeat("x", 129) + "\",\"cancel\":true}", "id");
        assertTrue("non-ASCII printable ids are fine", parse("{\"id\":\"jöb/1 #2\",\"cancel\":true}").isOk());
    }

    @Test
    public void acceptsOnlyE164Numbers() {
        for (String to : new String[] {"+254700000001", "+1234567", "+123456789012345", "+447911123456"}) {
            assertTrue(to, parse("{\"id\":\"a\",\"to\":\"" + to + "\",\"body\":\"x\",\"expiresAt\":\"2030-01-01T00:00:00Z\"}").isOk());
        }
        for (String to : new String[] {"254700000001", "+0254700000001", "+123456", "+1234567890123456", "+254 700 000001",
                "+254-700000001", "+٢٥٤٧٠٠٠٠٠٠٠١", "+254700000001\\n", ""}) {
            invalid("{\"id\":\"a\",\"to\":\"" + to + "\",\"body\":\"x\",\"expiresAt\":\"2030-01-01T00:00:00Z\"}", "E.164");
        }
        invalid("{\"id\":\"a\",\"to\":254700000001,\"body\":\"x\",\"expiresAt\":\"2030-01-01T00:00:00Z\"}", "E.164");
    }

    @Test
    public void countsBodyLengthInUtf16UnitsLikeJavaScript() {
        String base = "{\"id\":\"a\",\"to\":\"+254700000001\",\"expiresAt\":\"2030-01-01T00:00:00Z\",\"body\":";
        assertTrue(parse(base + "\"" + repeat("x", 1600) + "\"}").isOk());
        invalid(base + "\"" + repeat("x", 1601) + "\"}", "body");
        invalid(base + "\"\"}", "body");
        invalid(base + "null}", "body");
        assertTrue(parse(base + "\"" + repeat("😀", 800) + "\"}").isOk());
        invalid(base + "\"" + repeat("😀", 800) + "x\"}", "body");
    }

    @Test
    public void needsAnExpiryWithAZone() {
        String base = "{\"id\":\"a\",\"to\":\"+254700000001\",\"body\":\"x\",\"expiresAt\":";
        invalid(base + "\"2030-01-01T00:00:00\"}", "expiresAt");
        invalid(base + "\"2030-01-01\"}", "expiresAt");
        invalid(base + "1893456000000}", "expiresAt");
        invalid("{\"id\":\"a\",\"to\":\"+254700000001\",\"body\":\"x\"}", "expiresAt");
    }

    @Test
    public void capsThePayloadAt8KiBBeforeParsing() {
        String pad = ",\"pad\":\"";
        int room = PayloadRules.MAX_PAYLOAD_BYTES - (JOB.length() + pad.length() + 2);
        String exactly = JOB + pad + repeat("x", room) + "\"}";
        assertEquals(PayloadRules.MAX_PAYLOAD_BYTES, exactly.getBytes(StandardCharsets.UTF_8).length);
        assertTrue(parse(exactly).isOk());
        invalid(JOB + pad + repeat("x", room + 1) + "\"}", "byte limit");
        invalid(JOB + pad + repeat("é", room / 2 + 1) + "\"}", "byte limit");
        assertFalse(PayloadRules.parseOutbound(new byte[PayloadRules.MAX_PAYLOAD_BYTES + 1]).isOk());
    }

    @Test
    public void refusesBytesThatAreNotUtf8IncludingAByteOrderMarkedPayload() {
        invalid2(new byte[] {'{', (byte) 0xff, '}'}, "UTF-8");
        byte[] bom = ("\uFEFF{\"id\":\"a\",\"cancel\":true}").getBytes(StandardCharsets.UTF_8);
        invalid2(bom, "not JSON");
    }

    private static void invalid2(byte[] payload, String reasonPart) {
        Parsed<OutboundMessage> parsed = PayloadRules.parseOutbound(payload);
        assertFalse(parsed.isOk());
        assertTrue(parsed.reason(), parsed.reason().contains(reasonPart));
    }

    @Test
    public void ignoresUnknownMembers() {
        assertTrue(parse(job(",\"priority\":\"high\",\"meta\":{\"x\":[1]}")).isOk());
    }

    @Test
    public void neverPutsTheNumberOrTheCodeInToString() {
        String text = parse(job("")).value().toString();
        assertFalse(text, text.contains("254700000001"));
        assertFalse(text, text.contains("123456"));
    }

    @Test
    public void measuresUtf8LikeNode() {
        assertEquals(1, PayloadRules.utf8Length("a"));
        assertEquals(2, PayloadRules.utf8Length("é"));
        assertEquals(3, PayloadRules.utf8Length("€"));
        assertEquals(4, PayloadRules.utf8Length("😀"));
        assertEquals(3, PayloadRules.utf8Length("\ud800"));
    }
}
