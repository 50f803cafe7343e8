package org.otpgate.core;

import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Times on the wire: ISO 8601 with an explicit zone. A zoneless time would be
 * read as local time by JavaScript and by {@code java.time} alike, so a phone in
 * another zone would disagree with the gateway about expiry by hours; such
 * times are refused, as are bare dates and free-form text.
 *
 * The same function as parseIsoInstant of broker/payloads.ts, which the
 * gateway and the phone simulator use. The field ranges are those of
 * JavaScript's Date.parse (V8): day 1..31 in any month (30 February rolls over
 * into March), hour 24 only as 24:00:00.000, offsets up to ±23:59, fractions
 * beyond milliseconds truncated.
 */
public final class IsoTime {
    private static final Pattern INSTANT = Pattern.compile(
            "(\\d{4})-(\\d{2})-(\\d{2})T(\\d{2}):(\\d{2})(?::(\\d{2})(?:\\.(\\d{1,9}))?)?(Z|([+-])(\\d{2}):(\\d{2}))");

    private IsoTime() {}

    /** Epoch milliseconds, or null when the text is not a zone-qualified ISO 8601 instant. */
    public static Long parse(String text) {
        if (text == null) return null;
        Matcher m = INSTANT.matcher(text);
        if (!m.matches()) return null;
        int year = Integer.parseInt(m.group(1));
        int month = Integer.parseInt(m.group(2));
        int day = Integer.parseInt(m.group(3));
        int hour = Integer.parseInt(m.group(4));
        int minute = Integer.parseInt(m.group(5));
        int second = m.group(6) == null ? 0 : Integer.parseInt(m.group(6));
        int millis = m.group(7) == null ? 0 : Integer.parseInt((m.group(7) + "00").substring(0, 3));
        if (month < 1 || month > 12 || day < 1 || day > 31) return null;
        if (minute > 59 || second > 59) return null;
        if (hour > 24 || (hour == 24 && (minute != 0 || second != 0 || millis != 0))) return null;
        int offsetMinutes = 0;
        if (m.group(9) != null) {
            int offsetHours = Integer.parseInt(m.group(10));
            int offsetMins = Integer.parseInt(m.group(11));
            if (offsetHours > 23 || offsetMins > 59) return null;
            offsetMinutes = (offsetHours * 60 + offsetMins) * ("-".equals(m.group(9)) ? -1 : 1);
        }
        long days = daysFromCivil(year, month, 1) + (day - 1);
        long millisOfDay = ((hour * 60L + minute) * 60L + second) * 1000L + millis;
        return days * 86_400_000L + millisOfDay - offsetMinutes * 60_000L;
    }

    /**
     * Epoch numbers below this magnitude are seconds, others milliseconds: 1e11 seconds is the
     * year 5138 and 1e11 milliseconds is 1973-03-03, so no clock a phone plausibly has falls on
     * the wrong side of the cut.
     */
    public static final double EPOCH_SECONDS_BELOW = 1e11;
    /** 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z: what {@link #format} writes with a four-digit year. */
    public static final long MIN_REPORTED_MS = -62_167_219_200_000L;
    public static final long MAX_REPORTED_MS = 253_402_300_799_999L;

    /**
     * Epoch ms of a time a phone reports ({@code at} of acks and statuses, a JSON value as
     * {@link Json} reads it), or null when it cannot be read: an ISO 8601 time with a zone
     * ({@link #parse}), or a finite number, epoch seconds when its magnitude is below
     * {@link #EPOCH_SECONDS_BELOW} and epoch milliseconds otherwise, rounded to the millisecond.
     * Anything else, and any time outside years 0000..9999, is unreadable. Unreadable is not
     * refused: {@code at} is informational and the gateway's clock decides, so no ack is dropped
     * for it. readReportedTime of broker/payloads.ts is the same function.
     */
    public static Long readReported(Object value) {
        Long ms;
        if (value instanceof String) {
            ms = parse((String) value);
        } else if (value instanceof Double && !((Double) value).isNaN() && !((Double) value).isInfinite()) {
            double n = (Double) value;
            // Math.round rounds half up, as JavaScript's does; past Long's range it saturates, and the range check refuses that.
            ms = Math.round(Math.abs(n) < EPOCH_SECONDS_BELOW ? n * 1000 : n);
        } else {
            return null;
        }
        return ms != null && ms >= MIN_REPORTED_MS && ms <= MAX_REPORTED_MS ? ms : null;
    }

    /** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm; no time-zone database involved). */
    static long daysFromCivil(long year, int month, int day) {
        long y = month <= 2 ? year - 1 : year;
        long era = Math.floorDiv(y, 400);
        long yearOfEra = y - era * 400;
        long dayOfYear = (153L * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
        long dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear;
        return era * 146097 + dayOfEra - 719468;
    }

    private static final DateTimeFormatter ISO_MILLIS =
            DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSS'Z'", Locale.ROOT).withZone(ZoneOffset.UTC);

    /** Like JavaScript's Date.prototype.toISOString: always UTC, always milliseconds. */
    public static String format(long epochMillis) {
        return ISO_MILLIS.format(Instant.ofEpochMilli(epochMillis));
    }
}
