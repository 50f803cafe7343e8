package org.otpgate.core;

/** "Sent today" for the status screen: a count that starts again at local midnight. */
public final class DailyCount {
    private String day;
    private int count;

    public DailyCount(String day, int count) {
        this.day = day;
        this.count = count;
    }

    /** @param today the local date, e.g. "2030-01-31" */
    public void increment(String today) {
        if (!today.equals(day)) {
            day = today;
            count = 0;
        }
        count++;
    }

    public int get(String today) {
        return today.equals(day) ? count : 0;
    }

    public String day() {
        return day;
    }
}
