package org.otpgate.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import org.junit.Test;

public class BackoffTest {
    @Test
    public void doublesUpToTheCeiling() {
        long[] expected = {1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000};
        for (int attempt = 0; attempt < expected.length; attempt++) {
            assertEquals(expected[attempt], Backoff.delay(attempt, 1_000, 60_000, () -> 0.5));
        }
        assertEquals(60_000, Backoff.delay(1_000, 1_000, 60_000, () -> 0.5));
        assertEquals(1_000, Backoff.delay(-3, 1_000, 60_000, () -> 0.5));
    }

    @Test
    public void jittersByTwentyPercentButNeverPastTheCeiling() {
        assertEquals(800, Backoff.delay(0, 1_000, 60_000, () -> 0.0));
        assertEquals(1_200, Backoff.delay(0, 1_000, 60_000, () -> 0.99999999));
        assertEquals(60_000, Backoff.delay(10, 1_000, 60_000, () -> 0.99999999));
        assertEquals(48_000, Backoff.delay(10, 1_000, 60_000, () -> 0.0));
        assertTrue(Backoff.delay(0, 1, 1, () -> 0.0) >= 1);
    }
}
