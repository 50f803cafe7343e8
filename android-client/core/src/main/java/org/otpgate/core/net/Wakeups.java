package org.otpgate.core.net;

import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * Where {@link PhoneLink} takes its delays (back-off, refused-retry, heartbeat)
 * from. A Java scheduler's clock stops while a phone sleeps in Doze, so the app
 * gives one that sets alarms; the JVM and the tests use {@link #on}.
 */
public interface Wakeups {
    interface Pending {
        /** The task does not run after this (it may already have). */
        void cancel();
    }

    /** Runs {@code task} once, on any thread, after about {@code delayMs}. */
    Pending schedule(Runnable task, long delayMs);

    /** Delays on a Java executor: fine wherever the CPU does not sleep. */
    static Wakeups on(ScheduledExecutorService executor) {
        return (task, delayMs) -> {
            ScheduledFuture<?> future = executor.schedule(task, delayMs, TimeUnit.MILLISECONDS);
            return () -> future.cancel(false);
        };
    }
}
