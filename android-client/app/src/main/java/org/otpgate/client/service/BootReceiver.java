package org.otpgate.client.service;

import android.content.BroadcastReceiver;
import android.content.Context;
import android.content.Intent;
import org.otpgate.client.store.Prefs;

/**
 * Starts the gateway after a reboot or an app update, if it was running.
 * LOCKED_BOOT_COMPLETED comes before the owner unlocks a PIN-locked phone
 * (direct boot: the receiver, the service and their storage are
 * device-protected), BOOT_COMPLETED after; the second start is a no-op.
 * Allowed on Android 15 because the service's type is specialUse, not one of
 * the types (dataSync, camera, mediaPlayback, phoneCall, mediaProjection,
 * microphone) that BOOT_COMPLETED may no longer start.
 */
public final class BootReceiver extends BroadcastReceiver {
    @Override
    public void onReceive(Context context, Intent intent) {
        String action = intent.getAction();
        if (!Intent.ACTION_LOCKED_BOOT_COMPLETED.equals(action) && !Intent.ACTION_BOOT_COMPLETED.equals(action)
                && !Intent.ACTION_MY_PACKAGE_REPLACED.equals(action)) {
            return;
        }
        Prefs prefs = new Prefs(context);
        if (!prefs.serviceEnabled() || prefs.provisioning() == null) return;
        if (!GatewayService.isRunning()) GatewayService.start(context, "after " + action);
    }
}
