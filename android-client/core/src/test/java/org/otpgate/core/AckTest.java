package org.otpgate.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import org.junit.Test;

public class AckTest {
    private static final long NOW = IsoTime.parse("2030-01-01T12:00:00Z");

    @Test
    public void writesTheContractShape() {
        assertEquals("{\"id\":\"job-1\",\"status\":\"received\",\"at\":\"2030-01-01T12:00:00.000Z\"}",
                Ack.of("job-1", AckStatus.RECEIVED, NOW).toJson());
        assertEquals("{\"id\":\"job-1\",\"status\":\"failed\",\"error\":\"RESULT_ERROR_NO_SERVICE\",\"at\":\"2030-01-01T12:00:00.000Z\"}",
                Ack.failed("job-1", "RESULT_ERROR_NO_SERVICE", NOW).toJson());
    }

    @Test
    public void hasAnErrorExactlyWhenFailed() {
        try {
            Ack.of("a", AckStatus.FAILED, NOW);
            fail("a failed ack without an error");
        } catch (IllegalArgumentException expected) {
            // the error is required
        }
        try {
            Ack.failed("a", "", NOW);
            fail("a failed ack with an empty error");
        } catch (IllegalArgumentException expected) {
            // the error is required
        }
        assertNull(Ack.of("a", AckStatus.SENT, NOW).error);
    }

    @Test
    public void cutsAnErrorToWhatTheGatewayAccepts() {
        StringBuilder longError = new StringBuilder();
        for (int i = 0; i < 300; i++) longError.append('e');
        Ack ack = Ack.failed("a", longError.toString(), NOW);
        assertEquals(Ack.MAX_ERROR_CHARS, ack.error.length());
        assertTrue(Ack.parse(ack.toJson()).isOk());
    }

    @Test
    public void everyAckItBuildsReadsBack() {
        for (AckStatus status : AckStatus.values()) {
            Ack ack = status == AckStatus.FAILED ? Ack.failed("j", "EXPIRED", NOW) : Ack.of("j", status, NOW);
            Parsed<Ack> parsed = Ack.parse(ack.toJson());
            assertTrue(parsed.reason(), parsed.isOk());
            assertEquals(status, parsed.value().status);
            assertEquals(Long.valueOf(NOW), parsed.value().at);
        }
    }

    @Test
    public void readsWithTheGatewaysRules() {
        assertTrue(Ack.parse("{\"id\":\"a\",\"status\":\"sent\",\"at\":\"2030-01-01T00:00:00+03:00\",\"x\":1}").isOk());
        String[] refused = {
            "{\"id\":\"a\",\"status\":\"sent\",\"error\":\"x\"}",
            "{\"id\":\"a\",\"status\":\"failed\",\"at\":1893499202}",
            "{\"status\":\"sent\",\"at\":1893499202000}",
            "{\"id\":\"a\",\"status\":\"SENT\",\"at\":\"2030-01-01T00:00:00Z\"}",
            "{\"id\":\"a\",\"status\":\"queued\",\"at\":\"2030-01-01T00:00:00Z\"}",
            "{\"id\":\"a\",\"status\":\"sent\",\"error\":\"x\",\"at\":\"2030-01-01T00:00:00Z\"}",
            "{\"id\":\"a\",\"status\":\"failed\",\"at\":\"2030-01-01T00:00:00Z\"}",
            "{\"id\":\"a\",\"status\":\"failed\",\"error\":5,\"at\":\"2030-01-01T00:00:00Z\"}",
            "{\"id\":\"a\",\"status\":\"failed\",\"error\":\"\",\"at\":\"2030-01-01T00:00:00Z\"}",
            "{\"id\":\"a\",\"status\":\"sent\",\"error\":null,\"at\":\"2030-01-01T00:00:00Z\"}",
            "{\"id\":\"a\",\"status\":\"sent\",\"at\":\"2030-01-01T00:00:00Z\",\"pad\":\"" + new String(new char[PayloadRules.MAX_PAYLOAD_BYTES]).replace('\0', 'x') + "\"}",
            "{\"id\":\"\",\"status\":\"sent\",\"at\":\"2030-01-01T00:00:00Z\"}",
            "{\"status\":\"sent\",\"at\":\"2030-01-01T00:00:00Z\"}",
            "[]",
            "nope",
        };
        for (String text : refused) assertFalse(text, Ack.parse(text).isOk());
    }

    @Test
    public void takesAnAckWhateverItsTimeSays() {
        // Refusing a phone's sent over its timestamp would make the gateway send the code again.
        String[][] read = {
            {"{\"id\":\"a\",\"status\":\"sent\",\"at\":1893499202000}", "2030-01-01T12:00:02.000Z"},
            {"{\"id\":\"a\",\"status\":\"sent\",\"at\":1893499202}", "2030-01-01T12:00:02.000Z"},
            {"{\"id\":\"a\",\"status\":\"delivered\",\"at\":\"2030-01-01T07:00:02-05:00\"}", "2030-01-01T12:00:02.000Z"},
            {"{\"id\":\"a\",\"status\":\"sent\"}", null},
            {"{\"id\":\"a\",\"status\":\"sent\",\"at\":\"2030-01-01T00:00:00\"}", null},
            {"{\"id\":\"a\",\"status\":\"sent\",\"at\":\"Jan 1 2030\"}", null},
            {"{\"id\":\"a\",\"status\":\"sent\",\"at\":true}", null},
            {"{\"id\":\"a\",\"status\":\"sent\",\"at\":null}", null},
            {"{\"id\":\"a\",\"status\":\"failed\",\"error\":\"EXPIRED\",\"at\":{}}", null},
        };
        for (String[] c : read) {
            Parsed<Ack> parsed = Ack.parse(c[0]);
            assertTrue(c[0], parsed.isOk());
            Long at = parsed.value().at;
            assertEquals(c[0], c[1], at == null ? null : IsoTime.format(at));
        }
        // Read without a time, written back without one: the phone never invents an at.
        assertEquals("{\"id\":\"a\",\"status\":\"sent\"}", Ack.parse("{\"id\":\"a\",\"status\":\"sent\",\"at\":\"soon\"}").value().toJson());
    }

    @Test
    public void keysOneAckPerJobAndStatus() {
        assertEquals(Ack.of("a", AckStatus.SENT, 1).key(), Ack.of("a", AckStatus.SENT, 2).key());
        assertFalse(Ack.of("a", AckStatus.SENT, 1).key().equals(Ack.of("a", AckStatus.DELIVERED, 1).key()));
    }
}
