package org.otpgate.client;

import android.app.Application;
import android.app.NotificationChannel;
import android.app.NotificationManager;
import org.otpgate.client.service.GatewayService;

/** Creates the notification channel the foreground service needs before it can start. */
public final class OtpgateApp extends Application {
    @Override
    public void onCreate() {
        super.onCreate();
        NotificationChannel channel = new NotificationChannel(
                GatewayService.CHANNEL_ID, getString(R.string.channel_name), NotificationManager.IMPORTANCE_LOW);
        channel.setDescription(getString(R.string.channel_description));
        channel.setShowBadge(false);
        getSystemService(NotificationManager.class).createNotificationChannel(channel);
    }
}
