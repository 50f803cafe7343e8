package org.otpgate.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.fail;

import org.junit.Test;

public class SendWindowTest {
    @Test
    public void letsMaxThroughThenWaitsForTheOldestToLeave() {
        SendWindow window = new SendWindow(3, 60_000);
        for (int t = 0; t < 3; t++) {
            assertEquals(t * 10L, window.nextSlotAt(t * 10L, 1));
            window.record(t * 10L, 1);
        }
        assertEquals(60_000, window.nextSlotAt(30, 1));
        assertEquals(60_000, window.nextSlotAt(60_000, 1)); // the first leaves at exactly 60 000
        window.record(60_000, 1);
        assertEquals(60_010, window.nextSlotAt(60_000, 1));
    }

    @Test
    public void isSlidingNotPerCalendarMinute() {
        SendWindow window = new SendWindow(2, 60_000);
        window.record(59_000, 1);
        window.record(59_500, 1);
        assertEquals(119_000, window.nextSlotAt(61_000, 1));
    }

    @Test
    public void countsEveryPartOfALongMessage() {
        SendWindow window = new SendWindow(30, 60_000);
        window.record(0, 28);
        assertEquals(1_000, window.nextSlotAt(1_000, 2));
        assertEquals(60_000, window.nextSlotAt(1_000, 3));
        window.record(1_000, 2);
        assertEquals(60_000, window.nextSlotAt(2_000, 1));
    }

    @Test
    public void aMessageLargerThanTheWindowWaitsForAnEmptyWindow() {
        SendWindow window = new SendWindow(2, 60_000);
        assertEquals(0, window.nextSlotAt(0, 5));
        window.record(0, 1);
        assertEquals(60_000, window.nextSlotAt(10, 5));
    }

    @Test
    public void canBeLoweredAndRefusesNonsense() {
        SendWindow window = new SendWindow(30, 60_000);
        window.record(0, 5);
        window.setMax(5);
        assertEquals(60_000, window.nextSlotAt(1, 1));
        try {
            window.setMax(0);
            fail("accepted 0 per minute");
        } catch (IllegalArgumentException expected) {
            // ≥ 1
        }
    }
}
