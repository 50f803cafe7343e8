package org.otpgate.core;

/**
 * Reconnect delays (backoff.ts): doubling from min to max, each scaled by a
 * random factor in [0.8, 1.2). The jitter matters when a broker restarts:
 * without it every phone of a fleet would knock again in the same millisecond.
 */
public final class Backoff {
    public static final long DEFAULT_MIN_MS = 1_000;
    public static final long DEFAULT_MAX_MS = 60_000;

    public interface Random {
        /** A number in [0, 1). */
        double next();
    }

    private Backoff() {}

    public static long delay(int attempt, long minMs, long maxMs, Random random) {
        int exponent = Math.max(0, Math.min(attempt, 30));
        double doubled = minMs * Math.pow(2, exponent);
        double capped = Math.min(maxMs, doubled);
        long jittered = Math.round(capped * (0.8 + 0.4 * random.next()));
        return Math.max(1, Math.min(maxMs, jittered));
    }
}
