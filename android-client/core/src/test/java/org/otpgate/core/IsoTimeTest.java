package org.otpgate.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;

import org.json.JSONObject;
import org.junit.Test;

public class IsoTimeTest {
    /** RFC 3339 instants as z.iso.datetime({ offset: true }) takes them; the values are Node's Date.parse of the same text. */
    private static final Object[][] READ = {
        {"2030-01-01T00:00:00Z", 1893456000000L},
        {"2028-02-29T00:00:00Z", 1835395200000L},
        {"2030-01-01T23:59:59.123456789Z", 1893542399123L},
        {"2030-01-01T23:59:59.1234567891Z", 1893542399123L},
        {"2030-01-01T23:59:59.9999Z", 1893542399999L},
        {"2030-01-01T23:59:59.1Z", 1893542399100L},
        {"2030-01-01T00:00:00+23:59", 1893369660000L},
        {"2030-01-01T00:00:00-23:59", 1893542340000L},
        {"2030-01-01T00:00:00-00:00", 1893456000000L},
        {"0000-01-01T00:00:00Z", -62167219200000L},
        {"0000-02-29T00:00:00Z", -62162121600000L},
        {"9999-12-31T23:59:59.999+00:00", 253402300799999L},
        {"2030-01-01T00:00:00.5+05:30", 1893436200500L},
        {"1970-01-01T00:00:00+14:00", -50400000L},
    };

    @Test
    public void readsRfc3339InstantsAsDateParseDoes() {
        for (Object[] c : READ) assertEquals((String) c[0], c[1], IsoTime.parse((String) c[0]));
    }

    @Test
    public void refusesWhatRfc3339AndZodRefuse() {
        for (String text : new String[] {
            "2030-01-01T00:00:00", "2030-01-01", "2030-01-01T00:00Z", "2030-01-01 00:00:00Z", "2030-01-01t00:00:00Z",
            "2030-01-01T00:00:00z", "2030-01-01T00:00:00+0100", "2030-01-01T00:00:00+01", "2030-01-01T00:00:00+01:00:00",
            "Jan 1 2030", "1893456000000", "2030-1-01T00:00:00Z", "+002030-01-01T00:00:00Z", "2030-01-01T00:00:00.Z",
            " 2030-01-01T00:00:00Z", "2030-01-01T00:00:00Z\n", "", "2030-02-29T00:00:00Z", "2030-02-30T00:00:00Z",
            "2030-04-31T00:00:00Z", "2030-13-01T00:00:00Z", "2030-00-01T00:00:00Z", "2030-01-00T00:00:00Z",
            "2030-01-01T24:00:00Z", "2030-01-01T23:60:00Z", "2030-01-01T23:59:60Z", "2030-01-01T00:00:00+24:00",
            "2030-01-01T00:00:00+23:60", "٢٠٣٠-01-01T00:00:00Z",
        }) {
            assertNull(text, IsoTime.parse(text));
        }
        assertNull(IsoTime.parse(null));
    }

    @Test
    public void readsReportedTimesAsTheGatewayDoes() {
        assertEquals(Long.valueOf(1893499202000L), IsoTime.readReported("2030-01-01T15:00:02+03:00"));
        assertEquals(Long.valueOf(1893499202000L), IsoTime.readReported(1893499202000L));
        assertEquals(Long.valueOf(1893499202000L), IsoTime.readReported(1893499202000.0));
        assertEquals(Long.valueOf(1893499202000L), IsoTime.readReported(1893499202));
        assertEquals(Long.valueOf(1893499202250L), IsoTime.readReported(1893499202.25));
        // The cut: below 1e11 in magnitude is seconds, from 1e11 on milliseconds.
        assertEquals(Long.valueOf(99_999_999_999_000L), IsoTime.readReported(99_999_999_999L));
        assertEquals(Long.valueOf(100_000_000_000L), IsoTime.readReported(100_000_000_000L));
        assertEquals(Long.valueOf(-86_400_000L), IsoTime.readReported(-86_400));
        assertEquals(Long.valueOf(0L), IsoTime.readReported(0));
        // Half a millisecond rounds towards +infinity, as Math.round does in JavaScript (values from Node).
        assertEquals(Long.valueOf(100_000_000_001L), IsoTime.readReported(1e11 + 0.5));
        assertEquals(Long.valueOf(-100_000_000_000L), IsoTime.readReported(-1e11 - 0.5));
        assertEquals(Long.valueOf(-1L), IsoTime.readReported(-0.0015));
        assertEquals(Long.valueOf(IsoTime.MAX_REPORTED_MS), IsoTime.readReported(IsoTime.MAX_REPORTED_MS));
        assertEquals(Long.valueOf(IsoTime.MIN_REPORTED_MS), IsoTime.readReported("0000-01-01T00:00:00Z"));
        for (Object unreadable : new Object[] {
            null, JSONObject.NULL, Boolean.TRUE, "soon", "", "1893499202000", "2030-01-01T12:00:02", "2030-01-01T12:00Z",
            1e20, -1e20, IsoTime.MAX_REPORTED_MS + 1, Double.NaN, Double.POSITIVE_INFINITY,
            "0000-01-01T00:00:00+00:01", new JSONObject(), new org.json.JSONArray(),
        }) {
            assertNull(String.valueOf(unreadable), IsoTime.readReported(unreadable));
        }
    }

    @Test
    public void formatsLikeToIsoString() {
        assertEquals("2030-01-01T00:00:00.000Z", IsoTime.format(1893456000000L));
        assertEquals("1970-01-01T00:00:00.001Z", IsoTime.format(1));
        assertEquals("1969-12-31T23:59:59.999Z", IsoTime.format(-1));
        long now = 1893542399123L;
        assertEquals(Long.valueOf(now), IsoTime.parse(IsoTime.format(now)));
    }
}
