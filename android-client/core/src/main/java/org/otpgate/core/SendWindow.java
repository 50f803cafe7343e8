package org.otpgate.core;

import java.util.ArrayDeque;
import java.util.Iterator;

/**
 * The local send limit as a sliding window (send-window.ts). Android itself
 * counts the SMS an app sent in the last stretch of time (by default 30 a
 * minute, each part of a long message counting) and then asks the user, which
 * an unattended phone cannot answer; the phone stays under that with a limit
 * of its own. Pure: callers pass the time.
 */
public final class SendWindow {
    /** Android's default allowance (Settings.Global sms_outgoing_check_max_count). */
    public static final int ANDROID_DEFAULT_MAX_PER_MINUTE = 30;

    private final ArrayDeque<Long> sentAt = new ArrayDeque<>();
    private final long windowMs;
    private int maxPerWindow;

    public SendWindow(int maxPerWindow, long windowMs) {
        setMax(maxPerWindow);
        this.windowMs = windowMs;
    }

    public void setMax(int maxPerWindow) {
        if (maxPerWindow < 1) throw new IllegalArgumentException("maxPerMinute must be a whole number ≥ 1");
        this.maxPerWindow = maxPerWindow;
    }

    public int max() {
        return maxPerWindow;
    }

    /**
     * The earliest time ≥ now at which {@code count} more SMS fit in the
     * window. A message of more parts than the whole window waits for an empty
     * window rather than forever.
     */
    public long nextSlotAt(long now, int count) {
        forgetBefore(now);
        int needed = Math.min(Math.max(count, 1), maxPerWindow);
        int mustLeave = sentAt.size() + needed - maxPerWindow;
        if (mustLeave <= 0) return now;
        Iterator<Long> oldest = sentAt.iterator();
        long blocking = now;
        for (int i = 0; i < mustLeave; i++) blocking = oldest.next();
        return blocking + windowMs;
    }

    public void record(long now, int count) {
        for (int i = 0; i < Math.max(count, 1); i++) sentAt.addLast(now);
    }

    private void forgetBefore(long now) {
        while (!sentAt.isEmpty() && sentAt.peekFirst() + windowMs <= now) sentAt.removeFirst();
    }
}
