package org.otpgate.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;

import org.junit.Test;

public class IsoTimeTest {
    /** Expected values are what Node's Date.parse returned for the same text (V8). */
    private static final Object[][] SAME_AS_DATE_PARSE = {
        {"2030-01-01T00:00Z", 1893456000000L},
        {"2030-02-29T00:00:00Z", 1898553600000L},
        {"2028-02-29T00:00:00Z", 1835395200000L},
        {"2030-02-30T00:00:00Z", 1898640000000L},
        {"2030-02-31T00:00:00Z", 1898726400000L},
        {"2030-04-31T00:00:00Z", 1903824000000L},
        {"2030-13-01T00:00:00Z", null},
        {"2030-00-01T00:00:00Z", null},
        {"2030-01-00T00:00:00Z", null},
        {"2030-01-32T00:00:00Z", null},
        {"2030-01-01T24:00:00Z", 1893542400000L},
        {"2030-01-01T24:00:01Z", null},
        {"2030-01-01T24:01Z", null},
        {"2030-01-01T24:00:00.000Z", 1893542400000L},
        {"2030-01-01T24:00:00.001Z", null},
        {"2030-01-01T25:00:00Z", null},
        {"2030-01-01T23:60:00Z", null},
        {"2030-01-01T23:59:60Z", null},
        {"2030-01-01T23:59:59.123456789Z", 1893542399123L},
        {"2030-01-01T23:59:59.9999Z", 1893542399999L},
        {"2030-01-01T23:59:59.1Z", 1893542399100L},
        {"2030-01-01T00:00:00+24:00", null},
        {"2030-01-01T00:00:00+23:59", 1893369660000L},
        {"2030-01-01T00:00:00+23:60", null},
        {"2030-01-01T00:00:00-00:00", 1893456000000L},
        {"0000-01-01T00:00:00Z", -62167219200000L},
        {"9999-12-31T23:59:59.999+00:00", 253402300799999L},
        {"2030-01-01T00:00:00.5+05:30", 1893436200500L},
        {"1970-01-01T00:00:00+14:00", -50400000L},
    };

    @Test
    public void agreesWithJavaScriptsDateParse() {
        for (Object[] c : SAME_AS_DATE_PARSE) assertEquals((String) c[0], c[1], IsoTime.parse((String) c[0]));
    }

    @Test
    public void refusesTimesWithoutAZoneAndOtherSpellings() {
        for (String text : new String[] {
            "2030-01-01T00:00:00", "2030-01-01", "2030-01-01 00:00:00Z", "2030-01-01T00:00:00z",
            "2030-01-01T00:00:00+0100", "2030-01-01T00:00:00+01", "Jan 1 2030", "1893456000000",
            "2030-1-01T00:00:00Z", "+002030-01-01T00:00:00Z", "2030-01-01T00:00:00.Z",
            "2030-01-01T00:00:00.1234567890Z", " 2030-01-01T00:00:00Z", "2030-01-01T00:00:00Z\n", "",
        }) {
            assertNull(text, IsoTime.parse(text));
        }
        assertNull(IsoTime.parse(null));
    }

    @Test
    public void readsReportedTimesAsTheGatewayDoes() {
        assertEquals(Long.valueOf(1893499202000L), IsoTime.readReported("2030-01-01T15:00:02+03:00"));
        assertEquals(Long.valueOf(1893499202000L), IsoTime.readReported(1893499202000.0));
        assertEquals(Long.valueOf(1893499202000L), IsoTime.readReported(1893499202.0));
        assertEquals(Long.valueOf(1893499202250L), IsoTime.readReported(1893499202.25));
        // The cut: below 1e11 in magnitude is seconds, from 1e11 on milliseconds.
        assertEquals(Long.valueOf(99_999_999_999_000L), IsoTime.readReported(99_999_999_999.0));
        assertEquals(Long.valueOf(100_000_000_000L), IsoTime.readReported(1e11));
        assertEquals(Long.valueOf(-86_400_000L), IsoTime.readReported(-86_400.0));
        assertEquals(Long.valueOf(0L), IsoTime.readReported(0.0));
        // Half a millisecond rounds towards +infinity, as Math.round does in JavaScript (values from Node).
        assertEquals(Long.valueOf(100_000_000_001L), IsoTime.readReported(1e11 + 0.5));
        assertEquals(Long.valueOf(-100_000_000_000L), IsoTime.readReported(-1e11 - 0.5));
        assertEquals(Long.valueOf(-1L), IsoTime.readReported(-0.0015));
        assertEquals(Long.valueOf(IsoTime.MAX_REPORTED_MS), IsoTime.readReported((double) IsoTime.MAX_REPORTED_MS));
        assertEquals(Long.valueOf(IsoTime.MIN_REPORTED_MS), IsoTime.readReported("0000-01-01T00:00:00Z"));
        for (Object unreadable : new Object[] {
            null, Json.NULL, Boolean.TRUE, "soon", "", "1893499202000", "2030-01-01T12:00:02",
            1e20, -1e20, (double) IsoTime.MAX_REPORTED_MS + 1, Double.NaN, Double.POSITIVE_INFINITY,
            "0000-01-01T00:00:00+00:01", java.util.Collections.emptyMap(), java.util.Collections.emptyList(),
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
