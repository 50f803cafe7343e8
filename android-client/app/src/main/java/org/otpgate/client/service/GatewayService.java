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
import android.util.Log;
import androidx.core.app.NotificationCompat;
import androidx.core.app.ServiceCompat;
import androidx.core.content.ContextCompat;
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
 */
public final class GatewayService extends Service {
    public static final String CHANNEL_ID = "gateway";
    private static final int NOTIFICATION_ID = 1;
    private static final String TAG = "otpgate";

    private final Runnable refresh = this::updateNotification;
    private Gateway gateway;

    /** Remembers that the user wants it running (restored at boot) and starts it. */
    public static void start(Context context) {
        new Prefs(context).setServiceEnabled(true);
        ContextCompat.startForegroundService(context, new Intent(context, GatewayService.class));
    }

    public static void stop(Context context) {
        new Prefs(context).setServiceEnabled(false);
        context.stopService(new Intent(context, GatewayService.class));
    }

    @Override
    public void onCreate() {
        super.onCreate();
        gateway = Gateway.get(this);
    }

    @Override
    public int onStartCommand(Intent intent, int flags, int startId) {
        try {
            int type = Build.VERSION.SDK_INT >= Build.VERSION_CODES.UPSIDE_DOWN_CAKE
                    ? ServiceInfo.FOREGROUND_SERVICE_TYPE_SPECIAL_USE
                    : 0;
            ServiceCompat.startForeground(this, NOTIFICATION_ID, notification(), type);
        } catch (RuntimeException e) {
            // E.g. ForegroundServiceStartNotAllowedException when restarted from the background
            // without the battery-optimisation exemption: better stopped than a crash loop.
            Log.e(TAG, "could not start in the foreground", e);
            stopSelf();
            return START_NOT_STICKY;
        }
        gateway.removeListener(refresh);
        gateway.addListener(refresh);
        gateway.start();
        // Restarted by the system if killed, so the phone comes back on its own.
        return START_STICKY;
    }

    @Override
    public void onDestroy() {
        gateway.removeListener(refresh);
        gateway.stop();
        super.onDestroy();
    }

    @Override
    public IBinder onBind(Intent intent) {
        return null;
    }

    private void updateNotification() {
        getSystemService(NotificationManager.class).notify(NOTIFICATION_ID, notification());
    }

    private Notification notification() {
        PendingIntent open = PendingIntent.getActivity(this, 0, new Intent(this, MainActivity.class), PendingIntent.FLAG_IMMUTABLE);
        String state = gateway == null ? "starting" : gateway.connection().name().toLowerCase().replace('_', ' ');
        return new NotificationCompat.Builder(this, CHANNEL_ID)
                .setSmallIcon(R.drawable.ic_notification)
                .setContentTitle(getString(R.string.app_name))
                .setContentText("Gateway: " + state)
                .setContentIntent(open)
                .setOngoing(true)
                .setOnlyAlertOnce(true)
                .setCategory(NotificationCompat.CATEGORY_SERVICE)
                .setForegroundServiceBehavior(NotificationCompat.FOREGROUND_SERVICE_IMMEDIATE)
                .build();
    }
}
