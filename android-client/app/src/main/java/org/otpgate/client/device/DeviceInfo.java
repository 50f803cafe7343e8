package org.otpgate.client.device;

import android.content.Context;
import android.os.BatteryManager;
import android.os.Build;
import android.telephony.SignalStrength;
import android.telephony.TelephonyManager;
import org.otpgate.client.BuildConfig;
import org.otpgate.client.sms.Sims;
import org.otpgate.core.DeviceStatus;

/** The heartbeat's facts: battery, signal bars, SIMs, app version. */
public final class DeviceInfo {
    public static final String APP = "otpgate-android/" + BuildConfig.VERSION_NAME;

    private DeviceInfo() {}

    public static String onlineStatus(Context context) {
        return DeviceStatus.online(battery(context), signal(context), Sims.describe(context), APP, System.currentTimeMillis());
    }

    static int battery(Context context) {
        BatteryManager battery = context.getSystemService(BatteryManager.class);
        int percent = battery == null ? 0 : battery.getIntProperty(BatteryManager.BATTERY_PROPERTY_CAPACITY);
        return percent < 0 || percent == Integer.MIN_VALUE ? 0 : percent;
    }

    /** 0..4 bars; 0 when unknown (getSignalStrength exists from API 28). */
    static int signal(Context context) {
        if (Build.VERSION.SDK_INT < Build.VERSION_CODES.P) return 0;
        TelephonyManager telephony = context.getSystemService(TelephonyManager.class);
        SignalStrength strength = telephony == null ? null : telephony.getSignalStrength();
        return strength == null ? 0 : strength.getLevel();
    }
}
