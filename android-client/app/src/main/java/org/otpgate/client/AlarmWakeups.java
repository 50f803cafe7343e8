package org.otpgate.client;

import android.app.AlarmManager;
import android.app.PendingIntent;
import android.content.Context;
import android.content.Intent;
import android.os.Build;
import android.os.Handler;
import android.os.PowerManager;
import android.os.SystemClock;
import android.util.Log;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BooleanSupplier;
import org.otpgate.client.service.WakeReceiver;
import org.otpgate.core.net.Wakeups;

/**
 * Every timer of the gateway (the engine's send window and expiry, the link's
 * back-off and heartbeat) on the gateway's thread. A Handler's clock stops
 * while the CPU sleeps, so unless the wake lock keeps it up one alarm
 * (WakeReceiver) is set for the earliest timer: exact when Android allows (the
 * battery-optimisation exemption grants exact alarms), otherwise inexact, both
 * allowed in Doze. The Handler covers the awake case.
 */
final class AlarmWakeups implements Wakeups {
    private static final String TAG = "otpgate";
    /** Long enough for a connection attempt (15 s timeout) the wakeup starts on Paho's threads. */
    private static final long AFTER_ALARM_AWAKE_MS = 20_000;

    private static final class Entry {
        final long at;
        final Runnable task;

        Entry(long at, Runnable task) {
            this.at = at;
            this.task = task;
        }
    }

    private final Context context;
    private final Handler handler;
    private final BooleanSupplier cpuKeptAwake;
    private final Runnable runDue = () -> runDue(false);
    /** Guarded by this; times on SystemClock.elapsedRealtime(), which counts deep sleep. */
    private final List<Entry> entries = new ArrayList<>();
    private PowerManager.WakeLock afterAlarm;

    AlarmWakeups(Context context, Handler handler, BooleanSupplier cpuKeptAwake) {
        this.context = context;
        this.handler = handler;
        this.cpuKeptAwake = cpuKeptAwake;
    }

    @Override
    public Pending schedule(Runnable task, long delayMs) {
        Entry entry = new Entry(SystemClock.elapsedRealtime() + Math.max(0, delayMs), task);
        synchronized (this) {
            entries.add(entry);
            arm();
        }
        return () -> {
            synchronized (this) {
                if (entries.remove(entry)) arm();
            }
        };
    }

    /** On the gateway's thread: runs what is due. {@code fromAlarm}: the CPU was woken for it and may sleep again at once. */
    void runDue(boolean fromAlarm) {
        List<Runnable> due = new ArrayList<>();
        synchronized (this) {
            long now = SystemClock.elapsedRealtime();
            for (int i = entries.size() - 1; i >= 0; i--) {
                if (entries.get(i).at <= now) due.add(0, entries.remove(i).task);
            }
            arm();
        }
        if (fromAlarm && !due.isEmpty()) keepAwakeAfterAlarm();
        for (Runnable task : due) {
            try {
                task.run();
            } catch (RuntimeException e) {
                Log.e(TAG, "timer failed", e);
            }
        }
    }

    /** The wake lock was taken or released: the alarm is needed only without it. */
    synchronized void rearm() {
        arm();
    }

    /** Both clocks on the earliest entry; the one PendingIntent means a new alarm replaces the last. */
    private void arm() {
        handler.removeCallbacks(runDue);
        AlarmManager alarms = context.getSystemService(AlarmManager.class);
        PendingIntent wake = PendingIntent.getBroadcast(context, 0, new Intent(context, WakeReceiver.class),
                PendingIntent.FLAG_IMMUTABLE | PendingIntent.FLAG_UPDATE_CURRENT);
        if (entries.isEmpty()) {
            if (alarms != null) alarms.cancel(wake);
            return;
        }
        long at = Long.MAX_VALUE;
        for (Entry entry : entries) at = Math.min(at, entry.at);
        handler.postDelayed(runDue, Math.max(0, at - SystemClock.elapsedRealtime()));
        if (alarms == null) return;
        if (cpuKeptAwake.getAsBoolean()) {
            alarms.cancel(wake);
            return;
        }
        try {
            if (Build.VERSION.SDK_INT < Build.VERSION_CODES.S || alarms.canScheduleExactAlarms()) {
                alarms.setExactAndAllowWhileIdle(AlarmManager.ELAPSED_REALTIME_WAKEUP, at, wake);
            } else {
                alarms.setAndAllowWhileIdle(AlarmManager.ELAPSED_REALTIME_WAKEUP, at, wake);
            }
        } catch (SecurityException e) {
            // The exemption was withdrawn between the check and the call.
            alarms.setAndAllowWhileIdle(AlarmManager.ELAPSED_REALTIME_WAKEUP, at, wake);
        }
    }

    /** WakeReceiver's broadcast lock ends when the tasks return, before the reconnect or publish they start is done. */
    private void keepAwakeAfterAlarm() {
        if (afterAlarm == null) {
            PowerManager power = context.getSystemService(PowerManager.class);
            if (power == null) return;
            afterAlarm = power.newWakeLock(PowerManager.PARTIAL_WAKE_LOCK, "otpgate:timer");
            afterAlarm.setReferenceCounted(false);
        }
        afterAlarm.acquire(AFTER_ALARM_AWAKE_MS);
    }
}
