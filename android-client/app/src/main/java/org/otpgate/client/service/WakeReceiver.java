package org.otpgate.client.service;

import android.content.BroadcastReceiver;
import android.content.Context;
import android.content.Intent;
import org.otpgate.client.Gateway;

/**
 * The alarm AlarmWakeups sets for the gateway's next timer (the engine's send
 * window and expiry, the link's back-off and heartbeat) when no wake lock keeps
 * the CPU up. goAsync keeps the broadcast's own wake lock until the due timers,
 * on the gateway's thread, have run.
 */
public final class WakeReceiver extends BroadcastReceiver {
    @Override
    public void onReceive(Context context, Intent intent) {
        PendingResult pending = goAsync();
        Gateway.get(context).wake(pending::finish);
    }
}
