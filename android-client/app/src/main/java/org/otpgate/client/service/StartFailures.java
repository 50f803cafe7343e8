package org.otpgate.client.service;

import android.app.Notification;
import android.app.NotificationChannel;
import android.app.NotificationManager;
import android.app.PendingIntent;
import android.content.Context;
import android.content.Intent;
import android.util.Log;
import java.text.DateFormat;
import java.util.Date;
import org.otpgate.client.R;
import org.otpgate.client.store.Prefs;
import org.otpgate.client.ui.MainActivity;

/**
 * A service that could not start used to vanish with a line in logcat. Now the
 * reason is kept (the status screen shows it) and announced with a notification
 * that opens the app, where a tap on Start runs it from the foreground.
 */
public final class StartFailures {
    public static final String CHANNEL_ID = "problems";
    private static final int NOTIFICATION_ID = 2;

    private StartFailures() {}

    public static NotificationChannel channel(Context context) {
        NotificationChannel channel = new NotificationChannel(
                CHANNEL_ID, context.getString(R.string.problems_channel_name), NotificationManager.IMPORTANCE_DEFAULT);
        channel.setDescription(context.getString(R.string.problems_channel_description));
        return channel;
    }

    public static void report(Context context, String when, Throwable error) {
        String why = error.getClass().getSimpleName() + (error.getMessage() == null ? "" : ": " + error.getMessage());
        Log.e("otpgate", "the gateway service could not start " + when, error);
        String text = DateFormat.getDateTimeInstance().format(new Date()) + ", " + when + ": " + why;
        new Prefs(context).setStartFailure(text);
        PendingIntent open = PendingIntent.getActivity(context, 1, new Intent(context, MainActivity.class)
                .addFlags(Intent.FLAG_ACTIVITY_NEW_TASK), PendingIntent.FLAG_IMMUTABLE);
        Notification notification = new Notification.Builder(context, CHANNEL_ID)
                .setSmallIcon(R.drawable.ic_notification)
                .setContentTitle(context.getString(R.string.start_failed_title))
                .setContentText(why)
                .setStyle(new Notification.BigTextStyle().bigText(context.getString(R.string.start_failed_text, text)))
                .setContentIntent(open)
                .setAutoCancel(true)
                .build();
        NotificationManager manager = context.getSystemService(NotificationManager.class);
        try {
            if (manager != null) manager.notify(NOTIFICATION_ID, notification);
        } catch (RuntimeException e) {
            // Without POST_NOTIFICATIONS the status screen still shows it.
            Log.w("otpgate", "start failure not notified", e);
        }
    }

    public static void clear(Context context) {
        new Prefs(context).setStartFailure(null);
        NotificationManager manager = context.getSystemService(NotificationManager.class);
        if (manager != null) manager.cancel(NOTIFICATION_ID);
    }
}
