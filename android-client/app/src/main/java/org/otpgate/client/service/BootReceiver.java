package org.otpgate.client.service;

import android.content.BroadcastReceiver;
import android.content.Context;
import android.content.Intent;
import android.util.Log;
import org.otpgate.client.store.Prefs;

/**
 * Starts the gateway after a reboot or an app update, if it was running. Allowed
 * on Android 15 because the service's type is specialUse, not one of the types
 * (dataSync, camera, mediaPlayback, phoneCall, mediaProjection, microphone)
 * that BOOT_COMPLETED may no longer start.
 */
public final class BootReceiver extends BroadcastReceiver {
    @Override
    public void onReceive(Context context, Intent intent) {
        String action = intent.getAction();
        if (!Intent.ACTION_BOOT_COMPLETED.equals(action) && !Intent.ACTION_MY_PACKAGE_REPLACED.equals(action)) return;
        Prefs prefs = new Prefs(context);
        if (!prefs.serviceEnabled() || prefs.provisioning() == null) return;
        try {
            GatewayService.start(context);
        } catch (RuntimeException e) {
            Log.e("otpgate", "could not start the gateway after " + action, e);
        }
    }
}
