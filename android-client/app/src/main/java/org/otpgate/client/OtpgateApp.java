package org.otpgate.client;

import android.app.Application;
import android.app.NotificationChannel;
import android.app.NotificationManager;
import org.otpgate.client.service.GatewayService;
import org.otpgate.client.service.StartFailures;

/**
 * Creates the notification channels the foreground service and its start-up
 * failures need. Runs in direct boot too, so it touches no credential-protected storage.
 */
public final class OtpgateApp extends Application {
    @Override
    public void onCreate() {
        super.onCreate();
        NotificationChannel channel = new NotificationChannel(
                GatewayService.CHANNEL_ID, getString(R.string.channel_name), NotificationManager.IMPORTANCE_LOW);
        channel.setDescription(getString(R.string.channel_description));
        channel.setShowBadge(false);
        NotificationManager manager = getSystemService(NotificationManager.class);
        manager.createNotificationChannel(channel);
        manager.createNotificationChannel(StartFailures.channel(this));
    }
}
