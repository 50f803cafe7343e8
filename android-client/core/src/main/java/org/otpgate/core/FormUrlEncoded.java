package org.otpgate.core;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/** application/x-www-form-urlencoded parsing, as JavaScript's URLSearchParams does it. */
final class FormUrlEncoded {
    private FormUrlEncoded() {}

    /** Name/value pairs in order; a repeated name appears once per occurrence. */
    static List<String[]> parse(String query) {
        List<String[]> pairs = new ArrayList<>();
        for (String sequence : query.split("&", -1)) {
            if (sequence.isEmpty()) continue;
            int eq = sequence.indexOf('=');
            String name = eq < 0 ? sequence : sequence.substring(0, eq);
            String value = eq < 0 ? "" : sequence.substring(eq + 1);
            pairs.add(new String[] {percentDecode(name, true), percentDecode(value, true)});
        }
        return pairs;
    }

    /**
     * %XX sequences become bytes, the bytes UTF-8 (malformed ones U+FFFD); a
     * '%' not followed by two hex digits stays as it is, as in JavaScript.
     */
    static String percentDecode(String s, boolean plusIsSpace) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        byte[] raw = s.getBytes(StandardCharsets.UTF_8);
        for (int i = 0; i < raw.length; i++) {
            byte b = raw[i];
            if (b == '+' && plusIsSpace) {
                bytes.write(' ');
            } else if (b == '%' && i + 2 < raw.length && hex(raw[i + 1]) >= 0 && hex(raw[i + 2]) >= 0) {
                bytes.write(hex(raw[i + 1]) * 16 + hex(raw[i + 2]));
                i += 2;
            } else {
                bytes.write(b);
            }
        }
        return new String(bytes.toByteArray(), StandardCharsets.UTF_8);
    }

    private static int hex(byte b) {
        if (b >= '0' && b <= '9') return b - '0';
        if (b >= 'a' && b <= 'f') return b - 'a' + 10;
        if (b >= 'A' && b <= 'F') return b - 'A' + 10;
        return -1;
    }
}
