package org.otpgate.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.util.HashSet;
import java.util.Set;
import org.junit.Test;

public class SmsResultCodesTest {
    @Test
    public void namesTheClassicSmsManagerErrors() {
        assertEquals("RESULT_ERROR_GENERIC_FAILURE", SmsResultCodes.errorName(1));
        assertEquals("RESULT_ERROR_RADIO_OFF", SmsResultCodes.errorName(2));
        assertEquals("RESULT_ERROR_NULL_PDU", SmsResultCodes.errorName(3));
        assertEquals("RESULT_ERROR_NO_SERVICE", SmsResultCodes.errorName(4));
        assertEquals("RESULT_ERROR_LIMIT_EXCEEDED", SmsResultCodes.errorName(5));
        assertEquals("RESULT_ERROR_FDN_CHECK_FAILURE", SmsResultCodes.errorName(6));
        assertEquals("RESULT_ERROR_SHORT_CODE_NOT_ALLOWED", SmsResultCodes.errorName(7));
        assertEquals("RESULT_ERROR_SHORT_CODE_NEVER_ALLOWED", SmsResultCodes.errorName(8));
    }

    @Test
    public void namesTheNewerOnes() {
        assertEquals("RESULT_RADIO_NOT_AVAILABLE", SmsResultCodes.errorName(9));
        assertEquals("RESULT_NO_DEFAULT_SMS_APP", SmsResultCodes.errorName(32));
        assertEquals("RESULT_USER_NOT_ALLOWED", SmsResultCodes.errorName(33));
        assertEquals("RESULT_RIL_RADIO_NOT_AVAILABLE", SmsResultCodes.errorName(100));
        assertEquals("RESULT_RIL_SIM_ABSENT", SmsResultCodes.errorName(120));
        assertEquals("RESULT_RIL_ABORTED", SmsResultCodes.errorName(137));
    }

    @Test
    public void givesUnknownCodesAStableNameToo() {
        assertEquals("RESULT_UNKNOWN_999", SmsResultCodes.errorName(999));
        assertEquals("RESULT_UNKNOWN_-7", SmsResultCodes.errorName(-7));
    }

    @Test
    public void everyNameIsDistinctAndFitsAnAck() {
        Set<String> names = new HashSet<>();
        for (int code = -2; code < 600; code++) {
            if (SmsResultCodes.isSuccess(code)) continue;
            String name = SmsResultCodes.errorName(code);
            assertTrue(name, names.add(name));
            assertTrue(name.matches("[A-Z0-9_-]+") && name.length() <= Ack.MAX_ERROR_CHARS);
        }
    }

    @Test
    public void treatsResultOkAndErrorNoneAsSuccess() {
        assertTrue(SmsResultCodes.isSuccess(-1));
        assertTrue(SmsResultCodes.isSuccess(0));
        assertFalse(SmsResultCodes.isSuccess(1));
    }
}
