package org.otpgate.core;

/** A value, or the reason there is none (for the log; never carries a token or a full number). */
public final class Parsed<T> {
    private final T value;
    private final String reason;

    private Parsed(T value, String reason) {
        this.value = value;
        this.reason = reason;
    }

    public static <T> Parsed<T> ok(T value) {
        return new Parsed<>(value, null);
    }

    public static <T> Parsed<T> invalid(String reason) {
        return new Parsed<>(null, reason);
    }

    public boolean isOk() {
        return reason == null;
    }

    /** The value; throws when there is none, so a caller cannot act on an invalid payload by mistake. */
    public T value() {
        if (reason != null) throw new IllegalStateException("no value: " + reason);
        return value;
    }

    public String reason() {
        return reason;
    }

    @Override
    public String toString() {
        return isOk() ? "ok(" + value + ")" : "invalid(" + reason + ")";
    }
}
