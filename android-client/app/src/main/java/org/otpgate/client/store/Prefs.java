package org.otpgate.client.store;

import android.content.Context;
import android.content.SharedPreferences;
import java.security.cert.X509Certificate;
import java.util.List;
import org.otpgate.core.DailyCount;
import org.otpgate.core.Pem;
import org.otpgate.core.Provisioning;
import org.otpgate.core.SendWindow;

/**
 * The app's settings in private SharedPreferences, written with commit() so a
 * provisioning is on disk before the service uses it. The provisioning URI,
 * token included, stays in app-private storage and out of backups
 * (android:allowBackup="false", data_extraction_rules.xml).
 *
 * Everything lives in device-protected storage ({@link #storage}), which is
 * readable right after a reboot, before the owner unlocks a PIN-locked phone:
 * that is what lets the gateway run in direct boot. The price is that the token
 * is protected by the device's key rather than the owner's PIN (README).
 * Reading blocks on disk the first time: call off the main thread.
 */
public final class Prefs {
    public static final int DEFAULT_HEARTBEAT_SECONDS = 60;

    private static final String FILE = "otpgate";
    private static final String URI = "provisioning_uri";
    private static final String CA_PEM = "ca_pem";
    private static final String MAX_PER_MINUTE = "max_per_minute";
    private static final String HEARTBEAT_SECONDS = "heartbeat_seconds";
    private static final String KEEP_AWAKE = "keep_awake";
    private static final String SERVICE_ENABLED = "service_enabled";
    private static final String SENT_DAY = "sent_day";
    private static final String SENT_COUNT = "sent_count";
    private static final String START_FAILURE = "start_failure";

    private final SharedPreferences prefs;

    public Prefs(Context context) {
        prefs = storage(context).getSharedPreferences(FILE, Context.MODE_PRIVATE);
    }

    /** The device-protected storage of the app: the same files before and after the first unlock. */
    public static Context storage(Context context) {
        Context app = context.getApplicationContext();
        return (app != null ? app : context).createDeviceProtectedStorageContext();
    }

    /** Null when the phone is not provisioned (or the stored URI no longer parses). */
    public Provisioning provisioning() {
        String uri = prefs.getString(URI, null);
        if (uri == null) return null;
        try {
            return Provisioning.parse(uri);
        } catch (Provisioning.InvalidException e) {
            return null;
        }
    }

    /** The CA downloaded at provisioning and checked against the pin, or null. */
    public X509Certificate caCertificate() {
        String pem = prefs.getString(CA_PEM, null);
        if (pem == null) return null;
        List<X509Certificate> certificates = Pem.certificates(pem);
        return certificates.isEmpty() ? null : certificates.get(0);
    }

    public boolean saveProvisioning(String uri, String caPem) {
        return prefs.edit().putString(URI, uri).putString(CA_PEM, caPem).commit();
    }

    public boolean forgetProvisioning() {
        return prefs.edit().remove(URI).remove(CA_PEM).putBoolean(SERVICE_ENABLED, false).commit();
    }

    public int maxPerMinute() {
        return prefs.getInt(MAX_PER_MINUTE, SendWindow.ANDROID_DEFAULT_MAX_PER_MINUTE);
    }

    public int heartbeatSeconds() {
        return prefs.getInt(HEARTBEAT_SECONDS, DEFAULT_HEARTBEAT_SECONDS);
    }

    public boolean keepAwake() {
        return prefs.getBoolean(KEEP_AWAKE, true);
    }

    public boolean saveTuning(int maxPerMinute, int heartbeatSeconds, boolean keepAwake) {
        return prefs.edit()
                .putInt(MAX_PER_MINUTE, maxPerMinute)
                .putInt(HEARTBEAT_SECONDS, heartbeatSeconds)
                .putBoolean(KEEP_AWAKE, keepAwake)
                .commit();
    }

    /** Whether the user wants the service running (restored after a reboot). */
    public boolean serviceEnabled() {
        return prefs.getBoolean(SERVICE_ENABLED, false);
    }

    public void setServiceEnabled(boolean enabled) {
        prefs.edit().putBoolean(SERVICE_ENABLED, enabled).apply();
    }

    /** Why the service last failed to start, with when; null after a start that worked. */
    public String startFailure() {
        return prefs.getString(START_FAILURE, null);
    }

    public void setStartFailure(String why) {
        prefs.edit().putString(START_FAILURE, why).apply();
    }

    public DailyCount sentToday() {
        return new DailyCount(prefs.getString(SENT_DAY, ""), prefs.getInt(SENT_COUNT, 0));
    }

    public void saveSentToday(DailyCount count, String today) {
        prefs.edit().putString(SENT_DAY, today).putInt(SENT_COUNT, count.get(today)).apply();
    }
}
