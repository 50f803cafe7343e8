package org.otpgate.core;

/**
 * A delivery report's TP-Status (3GPP TS 23.040 §9.2.3.15, what
 * SmsMessage.getStatus() returns for GSM/UMTS/LTE) as the phone acts on it.
 */
public final class DeliveryReports {
    public enum Outcome { DELIVERED, PENDING, FAILED }

    private DeliveryReports() {}

    public static Outcome classify(int tpStatus) {
        if (tpStatus < 0) return Outcome.FAILED; // no readable report
        if (tpStatus < 0x20) return Outcome.DELIVERED; // 0x00..0x1F: transaction completed
        if (tpStatus < 0x40) return Outcome.PENDING; // 0x20..0x3F: temporary error, the SMSC keeps trying
        return Outcome.FAILED; // 0x40..: permanent error, or temporary with the SMSC no longer trying
    }
}
