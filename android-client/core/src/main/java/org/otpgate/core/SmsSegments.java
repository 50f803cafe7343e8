package org.otpgate.core;

/**
 * How many SMS a body takes, for the send window before SmsManager has
 * divided it: GSM 7-bit (160 septets, 153 per part when concatenated, the
 * extension table's characters counting two) or else UCS-2 (70, 67 per part).
 * The app asks SmsManager.divideMessage when it can; this is the fallback and
 * what the JVM tests use.
 */
public final class SmsSegments {
    private static final String GSM_BASIC =
            "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
                    + "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
    private static final String GSM_EXTENSION = "^{}\\[~]|€\f";

    private SmsSegments() {}

    public static int count(String body) {
        int septets = 0;
        for (int i = 0; i < body.length(); i++) {
            char c = body.charAt(i);
            if (GSM_BASIC.indexOf(c) >= 0) {
                septets += 1;
            } else if (GSM_EXTENSION.indexOf(c) >= 0) {
                septets += 2;
            } else {
                return parts(body.length(), 70, 67);
            }
        }
        return parts(septets, 160, 153);
    }

    private static int parts(int units, int single, int perPart) {
        if (units <= single) return 1;
        return (units + perPart - 1) / perPart;
    }
}
