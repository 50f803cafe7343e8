package org.otpgate.client.service;

import android.app.job.JobInfo;
import android.app.job.JobParameters;
import android.app.job.JobScheduler;
import android.app.job.JobService;
import android.content.ComponentName;
import android.content.Context;
import org.otpgate.client.Gateway;
import org.otpgate.client.store.Prefs;

/**
 * Restarts the gateway service when it should run and does not: killed by a
 * vendor battery saver, or a START_STICKY restart that Android refused. A
 * periodic JobScheduler job (15 minutes, the shortest period Android allows;
 * persisted across reboots), scheduled while the user wants the gateway on.
 * When the service runs, it nudges a link that is waiting to retry: the
 * back-off alarm may be late (Doze rations alarms allowed while idle).
 */
public final class Watchdog extends JobService {
    private static final int JOB_ID = 1;
    private static final long PERIOD_MS = 15 * 60_000L;

    static void schedule(Context context) {
        JobScheduler scheduler = context.getSystemService(JobScheduler.class);
        if (scheduler == null || scheduler.getPendingJob(JOB_ID) != null) return;
        JobInfo job = new JobInfo.Builder(JOB_ID, new ComponentName(context, Watchdog.class))
                .setPeriodic(PERIOD_MS)
                .setPersisted(true)
                .build();
        scheduler.schedule(job);
    }

    static void cancel(Context context) {
        JobScheduler scheduler = context.getSystemService(JobScheduler.class);
        if (scheduler != null) scheduler.cancel(JOB_ID);
    }

    @Override
    public boolean onStartJob(JobParameters params) {
        // Reads a small preferences file on the main thread; done in a few milliseconds, once every 15 minutes.
        Prefs prefs = new Prefs(this);
        if (prefs.serviceEnabled() && prefs.provisioning() != null) {
            if (GatewayService.isRunning()) {
                Gateway.get(this).nudge();
            } else {
                GatewayService.start(this, "from the watchdog");
            }
        }
        return false;
    }

    @Override
    public boolean onStopJob(JobParameters params) {
        return false;
    }
}
