package org.otpgate.core;

import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Times on the wire: RFC 3339 instants, read as the gateway's
 * {@code z.iso.datetime({ offset: true })} reads them (broker/payloads.ts
 * parseIsoInstant): seconds required, any number of fraction digits (beyond
 * milliseconds ignored), {@code Z} or an offset ±hh:mm. A zoneless time would
 * be read as local time, so such times are refused, as are bare dates and
 * free-form text.
 */
public final class IsoTime {
    /**
     * The shape; java.time then checks the calendar. The offset is applied here rather than
     * by OffsetDateTime, whose ZoneOffset stops at ±18:00 while RFC 3339 (and zod) allow ±23:59.
     */
    private static final Pattern RFC3339 = Pattern.compile(
            "([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\\.([0-9]+))?(?:Z|([+-])([01][0-9]|2[0-3]):([0-5][0-9]))");

    private IsoTime() {}

    /** Epoch milliseconds, or null when the text is not an RFC 3339 instant. */
    public static Long parse(String text) {
        if (text == null) return null;
        Matcher m = RFC3339.matcher(text);
        if (!m.matches()) return null;
        LocalDateTime local;
        try {
            // ISO_LOCAL_DATE_TIME resolves strictly: real calendar dates, hours 00..23, seconds 00..59.
            local = LocalDateTime.parse(m.group(1));
        } catch (DateTimeParseException e) {
            return null;
        }
        long millis = m.group(2) == null ? 0 : Long.parseLong((m.group(2) + "00").substring(0, 3));
        long offsetMinutes = 0;
        if (m.group(3) != null) {
            offsetMinutes = (Integer.parseInt(m.group(4)) * 60L + Integer.parseInt(m.group(5))) * ("-".equals(m.group(3)) ? -1 : 1);
        }
        return local.toEpochSecond(ZoneOffset.UTC) * 1000 + millis - offsetMinutes * 60_000;
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
     * Epoch ms of a time a phone reports ({@code at} of acks and statuses, a value as org.json
     * reads it), or null when it cannot be read: an RFC 3339 instant ({@link #parse}), or a
     * finite number, epoch seconds when its magnitude is below {@link #EPOCH_SECONDS_BELOW} and
     * epoch milliseconds otherwise, rounded to the millisecond. Anything else, and any time
     * outside years 0000..9999, is unreadable. Unreadable is not refused: {@code at} is
     * informational and the gateway's clock decides, so no ack is dropped for it.
     * readReportedTime of broker/payloads.ts is the same function.
     */
    public static Long readReported(Object value) {
        Long ms;
        if (value instanceof String) {
            ms = parse((String) value);
        } else if (value instanceof Number) {
            double n = ((Number) value).doubleValue();
            if (Double.isNaN(n) || Double.isInfinite(n)) return null;
            // Math.round rounds half up, as JavaScript's does; past Long's range it saturates, and the range check refuses that.
            ms = Math.round(Math.abs(n) < EPOCH_SECONDS_BELOW ? n * 1000 : n);
        } else {
            return null;
        }
        return ms != null && ms >= MIN_REPORTED_MS && ms <= MAX_REPORTED_MS ? ms : null;
    }

    private static final DateTimeFormatter ISO_MILLIS =
            DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSS'Z'", Locale.ROOT).withZone(ZoneOffset.UTC);

    /** As the gateway writes times (toISOString): UTC, always milliseconds. */
    public static String format(long epochMillis) {
        return ISO_MILLIS.format(Instant.ofEpochMilli(epochMillis));
    }
}
