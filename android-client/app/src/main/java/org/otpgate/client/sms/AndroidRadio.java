package org.otpgate.client.sms;

import android.Manifest;
import android.app.PendingIntent;
import android.content.Context;
import android.content.Intent;
import android.content.pm.PackageManager;
import android.net.Uri;
import android.os.Build;
import android.telephony.SmsManager;
import android.telephony.SubscriptionInfo;
import android.telephony.SubscriptionManager;
import java.util.ArrayList;
import java.util.Set;
import org.otpgate.core.JobRules;
import org.otpgate.core.PhoneEngine;
import org.otpgate.core.SmsJob;
import org.otpgate.core.SmsSegments;

/**
 * The engine's radio: SmsManager for the job's SIM, the body divided with
 * divideMessage, one sent and one delivered PendingIntent per part, each
 * aimed explicitly at SmsResultReceiver.
 */
public final class AndroidRadio implements PhoneEngine.Radio {
    public static final String ACTION_SENT = "org.otpgate.client.SMS_SENT";
    public static final String ACTION_DELIVERED = "org.otpgate.client.SMS_DELIVERED";
    public static final String EXTRA_ID = "org.otpgate.client.JOB_ID";
    public static final String EXTRA_PART = "org.otpgate.client.PART";
    public static final String EXTRA_PARTS = "org.otpgate.client.PARTS";

    private final Context context;

    public AndroidRadio(Context context) {
        this.context = context.getApplicationContext();
    }

    @Override
    public Set<Integer> simSlots() {
        return Sims.activeSlots(context);
    }

    @Override
    public int partsFor(SmsJob job) {
        try {
            return smsManagerFor(job).divideMessage(job.body).size();
        } catch (PhoneEngine.RadioException | RuntimeException e) {
            return SmsSegments.count(job.body);
        }
    }

    @Override
    public int send(SmsJob job, int expectedParts) throws PhoneEngine.RadioException {
        if (context.checkSelfPermission(Manifest.permission.SEND_SMS) != PackageManager.PERMISSION_GRANTED) {
            throw new PhoneEngine.RadioException("NO_SMS_PERMISSION", "SEND_SMS is not granted");
        }
        ArrayList<String> parts;
        // All of it in the try: getting the SIM's SmsManager and dividing the body can throw as well as sending,
        // and each failure gets a failed ack with its reason rather than escaping into the engine's caller.
        try {
            SmsManager sms = smsManagerFor(job);
            parts = sms.divideMessage(job.body);
            ArrayList<PendingIntent> sent = new ArrayList<>();
            ArrayList<PendingIntent> delivered = new ArrayList<>();
            for (int part = 0; part < parts.size(); part++) {
                sent.add(resultIntent(ACTION_SENT, job.id, part, parts.size(), PendingIntent.FLAG_IMMUTABLE));
                delivered.add(resultIntent(ACTION_DELIVERED, job.id, part, parts.size(), deliveredFlags()));
            }
            sms.sendMultipartTextMessage(job.to, null, parts, sent, delivered);
        } catch (SecurityException e) {
            throw new PhoneEngine.RadioException("NO_SMS_PERMISSION", e.getMessage());
        } catch (RuntimeException e) {
            throw new PhoneEngine.RadioException("SMS_MANAGER_" + e.getClass().getSimpleName(), e.getMessage());
        }
        return parts.size();
    }

    /**
     * The delivered intent must be mutable: the system adds the status report's
     * PDU (extras "pdu" and "format") when it fires, and an immutable
     * PendingIntent drops those extras, leaving no TP-Status to read. It is safe
     * because the intent is explicit (our non-exported receiver) — the rule
     * Android 14 enforces for mutable PendingIntents. The sent intent carries
     * its result in the result code and stays immutable.
     */
    private static int deliveredFlags() {
        return Build.VERSION.SDK_INT >= Build.VERSION_CODES.S ? PendingIntent.FLAG_MUTABLE : 0;
    }

    private PendingIntent resultIntent(String action, String id, int part, int parts, int flags) {
        Intent intent = new Intent(context, SmsResultReceiver.class)
                .setAction(action)
                // A distinct data URI per job and part keeps the PendingIntents from replacing each other.
                .setData(Uri.parse("otpgate-sms://job/" + Uri.encode(id) + "/" + part))
                .putExtra(EXTRA_ID, id)
                .putExtra(EXTRA_PART, part)
                .putExtra(EXTRA_PARTS, parts);
        return PendingIntent.getBroadcast(context, 0, intent, flags | PendingIntent.FLAG_UPDATE_CURRENT);
    }

    @SuppressWarnings("deprecation") // getSmsManagerForSubscriptionId and getDefault before API 31
    private SmsManager smsManagerFor(SmsJob job) throws PhoneEngine.RadioException {
        int subscription;
        if (job.sim != null) {
            SubscriptionInfo info = Sims.forSlot(context, job.sim);
            if (info == null) throw new PhoneEngine.RadioException(JobRules.SIM_NOT_AVAILABLE, "no active SIM in slot " + job.sim);
            subscription = info.getSubscriptionId();
        } else {
            subscription = Sims.defaultSubscription(context);
        }
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.S) {
            SmsManager base = context.getSystemService(SmsManager.class);
            return subscription == SubscriptionManager.INVALID_SUBSCRIPTION_ID ? base : base.createForSubscriptionId(subscription);
        }
        return subscription == SubscriptionManager.INVALID_SUBSCRIPTION_ID
                ? SmsManager.getDefault()
                : SmsManager.getSmsManagerForSubscriptionId(subscription);
    }
}
