package org.otpgate.client.sms;

import android.Manifest;
import android.annotation.SuppressLint;
import android.content.Context;
import android.content.pm.PackageManager;
import android.telephony.SubscriptionInfo;
import android.telephony.SubscriptionManager;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.otpgate.core.SimInfo;

/** The SIMs the phone can send from, through SubscriptionManager (needs READ_PHONE_STATE). */
public final class Sims {
    private Sims() {}

    private static boolean canRead(Context context) {
        return context.checkSelfPermission(Manifest.permission.READ_PHONE_STATE) == PackageManager.PERMISSION_GRANTED;
    }

    @SuppressLint("MissingPermission") // checked by canRead
    private static List<SubscriptionInfo> active(Context context) {
        if (!canRead(context)) return Collections.emptyList();
        SubscriptionManager manager = context.getSystemService(SubscriptionManager.class);
        List<SubscriptionInfo> list;
        try {
            list = manager == null ? null : manager.getActiveSubscriptionInfoList();
        } catch (SecurityException e) {
            // Revoked between the check and the call, or a vendor build that wants more: the same as not granted.
            list = null;
        }
        return list == null ? Collections.<SubscriptionInfo>emptyList() : list;
    }

    /** Slots with an active SIM; empty without READ_PHONE_STATE, so a job naming a SIM is refused rather than sent on a guess. */
    public static Set<Integer> activeSlots(Context context) {
        Set<Integer> slots = new HashSet<>();
        for (SubscriptionInfo info : active(context)) slots.add(info.getSimSlotIndex());
        return slots;
    }

    public static List<SimInfo> describe(Context context) {
        List<SimInfo> sims = new ArrayList<>();
        for (SubscriptionInfo info : active(context)) {
            CharSequence carrier = info.getCarrierName();
            sims.add(new SimInfo(info.getSimSlotIndex(), carrier == null ? "" : carrier.toString()));
        }
        return sims;
    }

    /** The subscription of a slot, or null. */
    static SubscriptionInfo forSlot(Context context, int slot) {
        for (SubscriptionInfo info : active(context)) {
            if (info.getSimSlotIndex() == slot) return info;
        }
        return null;
    }

    /**
     * The subscription to send from when a job names no SIM: the user's
     * default SMS SIM, else the first active one. Without a default, a
     * dual-SIM phone's SmsManager would pop up a "choose a SIM" dialog that no
     * one is there to answer.
     */
    static int defaultSubscription(Context context) {
        int id = SubscriptionManager.getDefaultSmsSubscriptionId();
        if (id != SubscriptionManager.INVALID_SUBSCRIPTION_ID) return id;
        List<SubscriptionInfo> list = active(context);
        return list.isEmpty() ? SubscriptionManager.INVALID_SUBSCRIPTION_ID : list.get(0).getSubscriptionId();
    }
}
