package org.otpgate.core;

import static org.junit.Assert.assertEquals;

import org.junit.Test;
import org.otpgate.core.PermissionAdvice.Advice;

/** What the permission screen offers, Android 15's restricted settings included. */
public class PermissionAdviceTest {
    private static final int ANDROID_14 = 34;
    private static final int ANDROID_15 = 35;

    @Test
    public void grantedIsGrantedEverywhere() {
        assertEquals(Advice.GRANTED, PermissionAdvice.of(ANDROID_15, true, PermissionAdvice.SOURCE_DOWNLOADED_FILE, true, true, false));
    }

    @Test
    public void aSideloadedAppOnAndroid15IsToldBeforeAsking() {
        assertEquals(Advice.ASK_MAY_BE_RESTRICTED,
                PermissionAdvice.of(ANDROID_15, true, PermissionAdvice.SOURCE_LOCAL_FILE, false, false, false));
    }

    @Test
    public void aSilentRefusalOnAndroid15LeadsToAppInfoAndRestrictedSettings() {
        assertEquals(Advice.ALLOW_RESTRICTED_IN_APP_INFO,
                PermissionAdvice.of(ANDROID_15, true, PermissionAdvice.SOURCE_DOWNLOADED_FILE, false, true, false));
        assertEquals(Advice.ALLOW_RESTRICTED_IN_APP_INFO,
                PermissionAdvice.of(ANDROID_15, true, PermissionAdvice.SOURCE_UNKNOWN, false, true, false));
    }

    @Test
    public void aPlainDenyCanBeAskedAgain() {
        assertEquals(Advice.ASK_MAY_BE_RESTRICTED,
                PermissionAdvice.of(ANDROID_15, true, PermissionAdvice.SOURCE_LOCAL_FILE, false, true, true));
        assertEquals(Advice.ASK, PermissionAdvice.of(ANDROID_14, true, PermissionAdvice.SOURCE_LOCAL_FILE, false, true, true));
    }

    @Test
    public void storeAndAdbInstallsAreNotRestricted() {
        assertEquals(Advice.ASK, PermissionAdvice.of(ANDROID_15, true, PermissionAdvice.SOURCE_STORE, false, false, false));
        assertEquals(Advice.GRANT_IN_APP_INFO,
                PermissionAdvice.of(ANDROID_15, true, PermissionAdvice.SOURCE_UNSPECIFIED, false, true, false));
    }

    @Test
    public void olderAndroidAndOtherPermissionsOnlyNeedAppInfoWhenRefusedForGood() {
        assertEquals(Advice.GRANT_IN_APP_INFO, PermissionAdvice.of(ANDROID_14, true, PermissionAdvice.SOURCE_LOCAL_FILE, false, true, false));
        assertEquals(Advice.ASK, PermissionAdvice.of(ANDROID_15, false, PermissionAdvice.SOURCE_LOCAL_FILE, false, false, false));
        assertEquals(Advice.GRANT_IN_APP_INFO,
                PermissionAdvice.of(ANDROID_15, false, PermissionAdvice.SOURCE_LOCAL_FILE, false, true, false));
    }
}
