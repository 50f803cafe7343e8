package org.otpgate.client.sms;

import android.app.Activity;
import android.content.BroadcastReceiver;
import android.content.Context;
import android.content.Intent;
import android.telephony.SmsMessage;
import org.otpgate.client.Gateway;

/**
 * Receives the sent and delivered PendingIntents of AndroidRadio and hands
 * them to the engine, which maps the result code to the ack's error string
 * (core SmsResultCodes) and the status report to delivered or not (core
 * DeliveryReports). Works even when the process was restarted in between:
 * the engine rebuilds the job's progress from its ledger.
 *
 * onReceive runs on the main thread, and the engine writes its ledger and may
 * send the next SMS: that work goes to the gateway's thread, and goAsync keeps
 * the broadcast (and its wake lock) alive until it is done.
 */
public final class SmsResultReceiver extends BroadcastReceiver {
    @Override
    public void onReceive(Context context, Intent intent) {
        String id = intent.getStringExtra(AndroidRadio.EXTRA_ID);
        if (id == null) return;
        int part = intent.getIntExtra(AndroidRadio.EXTRA_PART, 0);
        int parts = intent.getIntExtra(AndroidRadio.EXTRA_PARTS, 1);
        Gateway gateway = Gateway.get(context);
        if (AndroidRadio.ACTION_SENT.equals(intent.getAction())) {
            int resultCode = getResultCode();
            PendingResult pending = goAsync();
            gateway.onSendResult(id, part, parts, resultCode, pending::finish);
        } else if (AndroidRadio.ACTION_DELIVERED.equals(intent.getAction())) {
            int status = tpStatus(intent, getResultCode());
            PendingResult pending = goAsync();
            gateway.onDeliveryReport(id, part, parts, status, pending::finish);
        }
    }

    /** The report's TP-Status; -1 when there is no readable report. */
    private static int tpStatus(Intent intent, int resultCode) {
        byte[] pdu = intent.getByteArrayExtra("pdu");
        if (pdu == null) {
            // Some vendor builds fire the intent without the PDU: the report came, its content is unknown.
            return resultCode == Activity.RESULT_OK ? 0 : -1;
        }
        SmsMessage report = SmsMessage.createFromPdu(pdu, intent.getStringExtra("format"));
        return report == null ? -1 : report.getStatus();
    }
}
