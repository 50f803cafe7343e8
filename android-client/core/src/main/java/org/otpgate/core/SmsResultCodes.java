package org.otpgate.core;

import java.util.HashMap;
import java.util.Map;

/**
 * The result code of an SMS "sent" PendingIntent as the stable string a
 * {@code failed} ack carries. The numbers are android.telephony.SmsManager's
 * (API 35), written out here so the mapping is plain Java and tested on the
 * JVM. A code Android adds later is reported as RESULT_UNKNOWN_&lt;n&gt;.
 */
public final class SmsResultCodes {
    /** Activity.RESULT_OK: the SMS left the phone. */
    public static final int RESULT_OK = -1;
    /** SmsManager.RESULT_ERROR_NONE ("no error", API 30) is also a success. */
    public static final int RESULT_ERROR_NONE = 0;

    public static final int RESULT_ERROR_GENERIC_FAILURE = 1;
    public static final int RESULT_ERROR_RADIO_OFF = 2;
    public static final int RESULT_ERROR_NULL_PDU = 3;
    public static final int RESULT_ERROR_NO_SERVICE = 4;
    public static final int RESULT_ERROR_LIMIT_EXCEEDED = 5;
    public static final int RESULT_ERROR_FDN_CHECK_FAILURE = 6;
    public static final int RESULT_ERROR_SHORT_CODE_NOT_ALLOWED = 7;
    public static final int RESULT_ERROR_SHORT_CODE_NEVER_ALLOWED = 8;

    private static final Map<Integer, String> NAMES = new HashMap<>();

    static {
        name(RESULT_ERROR_GENERIC_FAILURE, "RESULT_ERROR_GENERIC_FAILURE");
        name(RESULT_ERROR_RADIO_OFF, "RESULT_ERROR_RADIO_OFF");
        name(RESULT_ERROR_NULL_PDU, "RESULT_ERROR_NULL_PDU");
        name(RESULT_ERROR_NO_SERVICE, "RESULT_ERROR_NO_SERVICE");
        name(RESULT_ERROR_LIMIT_EXCEEDED, "RESULT_ERROR_LIMIT_EXCEEDED");
        name(RESULT_ERROR_FDN_CHECK_FAILURE, "RESULT_ERROR_FDN_CHECK_FAILURE");
        name(RESULT_ERROR_SHORT_CODE_NOT_ALLOWED, "RESULT_ERROR_SHORT_CODE_NOT_ALLOWED");
        name(RESULT_ERROR_SHORT_CODE_NEVER_ALLOWED, "RESULT_ERROR_SHORT_CODE_NEVER_ALLOWED");
        name(9, "RESULT_RADIO_NOT_AVAILABLE");
        name(10, "RESULT_NETWORK_REJECT");
        name(11, "RESULT_INVALID_ARGUMENTS");
        name(12, "RESULT_INVALID_STATE");
        name(13, "RESULT_NO_MEMORY");
        name(14, "RESULT_INVALID_SMS_FORMAT");
        name(15, "RESULT_SYSTEM_ERROR");
        name(16, "RESULT_MODEM_ERROR");
        name(17, "RESULT_NETWORK_ERROR");
        name(18, "RESULT_ENCODING_ERROR");
        name(19, "RESULT_INVALID_SMSC_ADDRESS");
        name(20, "RESULT_OPERATION_NOT_ALLOWED");
        name(21, "RESULT_INTERNAL_ERROR");
        name(22, "RESULT_NO_RESOURCES");
        name(23, "RESULT_CANCELLED");
        name(24, "RESULT_REQUEST_NOT_SUPPORTED");
        name(25, "RESULT_NO_BLUETOOTH_SERVICE");
        name(26, "RESULT_INVALID_BLUETOOTH_ADDRESS");
        name(27, "RESULT_BLUETOOTH_DISCONNECTED");
        name(28, "RESULT_UNEXPECTED_EVENT_STOP_SENDING");
        name(29, "RESULT_SMS_BLOCKED_DURING_EMERGENCY");
        name(30, "RESULT_SMS_SEND_RETRY_FAILED");
        name(31, "RESULT_REMOTE_EXCEPTION");
        name(32, "RESULT_NO_DEFAULT_SMS_APP");
        name(33, "RESULT_USER_NOT_ALLOWED");
        name(100, "RESULT_RIL_RADIO_NOT_AVAILABLE");
        name(101, "RESULT_RIL_SMS_SEND_FAIL_RETRY");
        name(102, "RESULT_RIL_NETWORK_REJECT");
        name(103, "RESULT_RIL_INVALID_STATE");
        name(104, "RESULT_RIL_INVALID_ARGUMENTS");
        name(105, "RESULT_RIL_NO_MEMORY");
        name(106, "RESULT_RIL_REQUEST_RATE_LIMITED");
        name(107, "RESULT_RIL_INVALID_SMS_FORMAT");
        name(108, "RESULT_RIL_SYSTEM_ERR");
        name(109, "RESULT_RIL_ENCODING_ERR");
        name(110, "RESULT_RIL_INVALID_SMSC_ADDRESS");
        name(111, "RESULT_RIL_MODEM_ERR");
        name(112, "RESULT_RIL_NETWORK_ERR");
        name(113, "RESULT_RIL_INTERNAL_ERR");
        name(114, "RESULT_RIL_REQUEST_NOT_SUPPORTED");
        name(115, "RESULT_RIL_INVALID_MODEM_STATE");
        name(116, "RESULT_RIL_NETWORK_NOT_READY");
        name(117, "RESULT_RIL_OPERATION_NOT_ALLOWED");
        name(118, "RESULT_RIL_NO_RESOURCES");
        name(119, "RESULT_RIL_CANCELLED");
        name(120, "RESULT_RIL_SIM_ABSENT");
        name(121, "RESULT_RIL_SIMULTANEOUS_SMS_AND_CALL_NOT_ALLOWED");
        name(122, "RESULT_RIL_ACCESS_BARRED");
        name(123, "RESULT_RIL_BLOCKED_DUE_TO_CALL");
        name(124, "RESULT_RIL_GENERIC_ERROR");
        name(125, "RESULT_RIL_INVALID_RESPONSE");
        name(126, "RESULT_RIL_SIM_PIN2");
        name(127, "RESULT_RIL_SIM_PUK2");
        name(128, "RESULT_RIL_SUBSCRIPTION_NOT_AVAILABLE");
        name(129, "RESULT_RIL_SIM_ERROR");
        name(130, "RESULT_RIL_INVALID_SIM_STATE");
        name(131, "RESULT_RIL_NO_SMS_TO_ACK");
        name(132, "RESULT_RIL_SIM_BUSY");
        name(133, "RESULT_RIL_SIM_FULL");
        name(134, "RESULT_RIL_NO_SUBSCRIPTION");
        name(135, "RESULT_RIL_NO_NETWORK_FOUND");
        name(136, "RESULT_RIL_DEVICE_IN_USE");
        name(137, "RESULT_RIL_ABORTED");
    }

    private SmsResultCodes() {}

    private static void name(int code, String name) {
        NAMES.put(code, name);
    }

    public static boolean isSuccess(int resultCode) {
        return resultCode == RESULT_OK || resultCode == RESULT_ERROR_NONE;
    }

    /** The stable error string of a failure code. */
    public static String errorName(int resultCode) {
        String name = NAMES.get(resultCode);
        return name != null ? name : "RESULT_UNKNOWN_" + resultCode;
    }
}
