package org.otpgate.core;

/**
 * What the permission screen offers for one runtime permission. Android 15
 * treats SEND_SMS as a "restricted setting" for apps installed from a file
 * (sideloaded, as this one is): the request is then denied without any dialog,
 * and the only way on is App info → ⋮ → "Allow restricted settings", after which
 * the request works. The app cannot read that switch, so it decides from the
 * Android version, how the app was installed and how the last request ended.
 */
public final class PermissionAdvice {
    public enum Advice {
        GRANTED,
        /** Show the system dialog. */
        ASK,
        /** Show the dialog, and say beforehand that Android may block it until restricted settings are allowed. */
        ASK_MAY_BE_RESTRICTED,
        /** The request was refused without a dialog: lead to App info with the restricted-settings steps. */
        ALLOW_RESTRICTED_IN_APP_INFO,
        /** Refused for good ("don't ask again"): only App info → Permissions can grant it now. */
        GRANT_IN_APP_INFO
    }

    /** Build.VERSION_CODES.VANILLA_ICE_CREAM. */
    public static final int ANDROID_15 = 35;
    /** PackageInstaller.PACKAGE_SOURCE_* (API 33); UNKNOWN when Android could not say. */
    public static final int SOURCE_UNKNOWN = -1;
    public static final int SOURCE_UNSPECIFIED = 0;
    public static final int SOURCE_OTHER = 1;
    public static final int SOURCE_STORE = 2;
    public static final int SOURCE_LOCAL_FILE = 3;
    public static final int SOURCE_DOWNLOADED_FILE = 4;

    private PermissionAdvice() {}

    /**
     * @param restrictable whether Android 15 restricts this permission for sideloaded apps (SEND_SMS)
     * @param packageSource how the app was installed, one of the SOURCE_ constants
     * @param refused a request for it was answered "denied" since the screen opened
     * @param rationale Activity.shouldShowRequestPermissionRationale: true after a plain "deny" the user may reverse
     */
    public static Advice of(int sdkInt, boolean restrictable, int packageSource, boolean granted, boolean refused, boolean rationale) {
        if (granted) return Advice.GRANTED;
        boolean mayBeRestricted = restrictable && sdkInt >= ANDROID_15 && fromFile(packageSource);
        if (!refused) return mayBeRestricted ? Advice.ASK_MAY_BE_RESTRICTED : Advice.ASK;
        // A user who pressed "deny" once can be asked again; one Android refused by itself cannot.
        if (rationale) return mayBeRestricted ? Advice.ASK_MAY_BE_RESTRICTED : Advice.ASK;
        return mayBeRestricted ? Advice.ALLOW_RESTRICTED_IN_APP_INFO : Advice.GRANT_IN_APP_INFO;
    }

    /** Store installs and adb installs (unspecified) are not restricted; a file, or not knowing, may be. */
    static boolean fromFile(int packageSource) {
        return packageSource == SOURCE_LOCAL_FILE || packageSource == SOURCE_DOWNLOADED_FILE || packageSource == SOURCE_UNKNOWN;
    }
}
