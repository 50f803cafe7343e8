package org.otpgate.client.service;

import android.app.Notification;
import android.app.NotificationManager;
import android.app.PendingIntent;
import android.app.Service;
import android.content.Context;
import android.content.Intent;
import android.content.pm.ServiceInfo;
import android.os.Build;
import android.os.IBinder;
import org.otpgate.client.Gateway;
import org.otpgate.client.R;
import org.otpgate.client.store.Prefs;
import org.otpgate.client.ui.MainActivity;

/**
 * Keeps the process, and so the MQTT connection, alive: a foreground service
 * with a permanent notification.
 *
 * Type specialUse (FOREGROUND_SERVICE_SPECIAL_USE, with the subtype property
 * in the manifest): dataSync would be the obvious name, but Android 15 caps
 * dataSync at 6 hours a day and forbids starting it from BOOT_COMPLETED, and
 * this service runs all day and must come back after a reboot. remoteMessaging
 * and connectedDevice describe other things. specialUse has neither limit.
 *
 * Direct-boot aware (manifest): it starts from LOCKED_BOOT_COMPLETED on a
 * PIN-locked phone, since everything it reads is in device-protected storage.
 */
public final class GatewayService extends Service {
    public static final String CHANNEL_ID = "gateway";
    private static final int NOTIFICATION_ID = 1;

    /** True between a successful start in the foreground and onDestroy; the watchdog reads it. */
    private static volatile boolean running;

    private final Runnable refresh = this::updateNotification;
    private Gateway gateway;
    /** The state the notification last showed; only touched by refresh, on the gateway's thread. */
    private String notified;

    /**
     * Remembers that the user wants it running (restored at boot, checked by the
     * watchdog) and starts it. Returns false, with the reason reported, when
     * Android refuses the start (e.g. from the background without the
     * battery-optimisation exemption).
     */
    public static boolean start(Context context, String when) {
        Prefs prefs = new Prefs(context);
        prefs.setServiceEnabled(true);
        Watchdog.schedule(context);
        try {
            context.startForegroundService(new Intent(context, GatewayService.class));
            return true;
        } catch (RuntimeException e) {
            // ForegroundServiceStartNotAllowedException (API 31+) and SecurityException are both RuntimeExceptions.
            StartFailures.report(context, when, e);
            return false;
        }
    }

    public static void stop(Context context) {
        new Prefs(context).setServiceEnabled(false);
        Watchdog.cancel(context);
        context.stopService(new Intent(context, GatewayService.class));
    }

    public static boolean isRunning() {
        return running;
    }

    @Override
    public void onCreate() {
        super.onCreate();
        gateway = Gateway.get(this);
    }

    @Override
    public int onStartCommand(Intent intent, int flags, int startId) {
        try {
            if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.UPSIDE_DOWN_CAKE) {
                startForeground(NOTIFICATION_ID, notification(), ServiceInfo.FOREGROUND_SERVICE_TYPE_SPECIAL_USE);
            } else {
                startForeground(NOTIFICATION_ID, notification());
            }
        } catch (RuntimeException e) {
            // E.g. ForegroundServiceStartNotAllowedException when restarted from the background
            // without the battery-optimisation exemption: stopped and said so, rather than a crash loop.
            StartFailures.report(this, "in startForeground", e);
            stopSelf();
            return START_NOT_STICKY;
        }
        running = true;
        StartFailures.clear(this);
        gateway.removeListener(refresh);
        gateway.addListener(refresh);
        gateway.start();
        // Restarted by the system if killed, so the phone comes back on its own (and the watchdog checks).
        return START_STICKY;
    }

    @Override
    public void onDestroy() {
        running = false;
        gateway.removeListener(refresh);
        gateway.stop();
        super.onDestroy();
    }

    @Override
    public IBinder onBind(Intent intent) {
        return null;
    }

    /**
     * The gateway calls this for every ack and job too, while the text only shows the connection: posting just the
     * changes keeps under Android's few updates a second per app, past which it drops them, the last one included.
     */
    private void updateNotification() {
        NotificationManager manager = getSystemService(NotificationManager.class);
        String state = stateText();
        if (manager == null || !running || state.equals(notified)) return;
        notified = state;
        manager.notify(NOTIFICATION_ID, notification());
    }

    private String stateText() {
        return gateway == null ? "starting" : gateway.connection().name().toLowerCase().replace('_', ' ');
    }

    private Notification notification() {
        PendingIntent open = PendingIntent.getActivity(this, 0, new Intent(this, MainActivity.class), PendingIntent.FLAG_IMMUTABLE);
        String state = stateText();
        Notification.Builder builder = new Notification.Builder(this, CHANNEL_ID)
                .setSmallIcon(R.drawable.ic_notification)
                .setContentTitle(getString(R.string.app_name))
                .setContentText("Gateway: " + state)
                .setContentIntent(open)
                .setOngoing(true)
                .setOnlyAlertOnce(true)
                .setCategory(Notification.CATEGORY_SERVICE);
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.S) {
            // Shown at once, not after Android's 10 s grace for short-lived services.
            builder.setForegroundServiceBehavior(Notification.FOREGROUND_SERVICE_IMMEDIATE);
        }
        return builder.build();
    }
}
