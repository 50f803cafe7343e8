package org.otpgate.core;

/**
 * Log lines never carry full phone numbers nor codes (DESIGN.md, security
 * rules): numbers keep their last three digits, bodies lose every digit.
 */
public final class Redact {
    private Redact() {}

    /** "+254700000123" → "+*********123". */
    public static String phoneNumber(String number) {
        if (number == null) return "null";
        StringBuilder out = new StringBuilder();
        int keepFrom = number.length() - 3;
        for (int i = 0; i < number.length(); i++) {
            char c = number.charAt(i);
            out.append(i < keepFrom && Character.isDigit(c) ? '*' : c);
        }
        return out.toString();
    }

    /** "Your code is 123456" → "Your code is ******". */
    public static String digits(String text) {
        if (text == null) return "null";
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            out.append(Character.isDigit(c) ? '*' : c);
        }
        return out.toString();
    }
}
