package org.otpgate.client.service;

import android.content.BroadcastReceiver;
import android.content.Context;
import android.content.Intent;
import org.otpgate.client.Gateway;

/**
 * The alarm Gateway sets for the engine's next timer when no wake lock keeps
 * the CPU up. goAsync keeps the broadcast's own wake lock until the engine,
 * on the gateway's thread, has run.
 */
public final class WakeReceiver extends BroadcastReceiver {
    @Override
    public void onReceive(Context context, Intent intent) {
        PendingResult pending = goAsync();
        Gateway.get(context).wake(pending::finish);
    }
}
