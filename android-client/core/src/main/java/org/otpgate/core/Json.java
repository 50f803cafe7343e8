package org.otpgate.core;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * JSON read exactly as JavaScript's JSON.parse reads it and written as
 * JSON.stringify writes it, because the gateway is JavaScript: the phone must
 * accept the same texts the server accepts, no more. Android's org.json is not
 * used for reading on purpose: its tokenizer is lenient (single quotes, unquoted
 * keys, comments, ';' between members), so it would take payloads the server
 * refuses.
 *
 * Values: objects are {@code Map<String,Object>} (insertion order kept, a
 * repeated key keeps its first position and its last value, as in JS), arrays
 * {@code List<Object>}, numbers {@code Double} (JS has one number type),
 * strings, {@code Boolean} and {@link #NULL}.
 */
public final class Json {
    /** JSON null, distinct from a missing member (Java null). */
    public static final Object NULL = new Object() {
        @Override
        public String toString() {
            return "null";
        }
    };

    private Json() {}

    public static final class SyntaxException extends Exception {
        SyntaxException(String message) {
            super(message);
        }
    }

    public static Object parse(String text) throws SyntaxException {
        Reader reader = new Reader(text);
        reader.skipWhitespace();
        Object value = reader.value();
        reader.skipWhitespace();
        if (reader.pos != text.length()) throw reader.error("unexpected text after the JSON value");
        return value;
    }

    /** JS's typeof x === "object" && !Array.isArray(x) && x !== null. */
    @SuppressWarnings("unchecked")
    public static Map<String, Object> asObject(Object value) {
        return value instanceof Map ? (Map<String, Object>) value : null;
    }

    /** A JS number is an integer when it has no fractional part (Number.isInteger). */
    public static boolean isInteger(Object value) {
        if (!(value instanceof Double)) return false;
        double d = (Double) value;
        return !Double.isInfinite(d) && !Double.isNaN(d) && d == Math.rint(d);
    }

    private static final class Reader {
        final String text;
        int pos;

        Reader(String text) {
            this.text = text;
        }

        SyntaxException error(String what) {
            return new SyntaxException(what + " at position " + pos);
        }

        void skipWhitespace() {
            while (pos < text.length()) {
                char c = text.charAt(pos);
                // Exactly JSON's four; JS's JSON.parse does not skip a BOM or other Unicode spaces.
                if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
                pos++;
            }
        }

        Object value() throws SyntaxException {
            if (pos >= text.length()) throw error("unexpected end of input");
            char c = text.charAt(pos);
            switch (c) {
                case '{':
                    return object();
                case '[':
                    return array();
                case '"':
                    return string();
                case 't':
                    return literal("true", Boolean.TRUE);
                case 'f':
                    return literal("false", Boolean.FALSE);
                case 'n':
                    return literal("null", NULL);
                default:
                    if (c == '-' || (c >= '0' && c <= '9')) return number();
                    throw error("unexpected character");
            }
        }

        Object literal(String word, Object value) throws SyntaxException {
            if (!text.startsWith(word, pos)) throw error("unexpected character");
            pos += word.length();
            return value;
        }

        Map<String, Object> object() throws SyntaxException {
            Map<String, Object> map = new LinkedHashMap<>();
            pos++; // {
            skipWhitespace();
            if (peek() == '}') {
                pos++;
                return map;
            }
            while (true) {
                skipWhitespace();
                if (peek() != '"') throw error("expected a member name in double quotes");
                String key = string();
                skipWhitespace();
                if (peek() != ':') throw error("expected ':'");
                pos++;
                skipWhitespace();
                map.put(key, value());
                skipWhitespace();
                char c = peek();
                pos++;
                if (c == '}') return map;
                if (c != ',') throw error("expected ',' or '}'");
            }
        }

        List<Object> array() throws SyntaxException {
            List<Object> list = new ArrayList<>();
            pos++; // [
            skipWhitespace();
            if (peek() == ']') {
                pos++;
                return list;
            }
            while (true) {
                skipWhitespace();
                list.add(value());
                skipWhitespace();
                char c = peek();
                pos++;
                if (c == ']') return list;
                if (c != ',') throw error("expected ',' or ']'");
            }
        }

        char peek() throws SyntaxException {
            if (pos >= text.length()) throw error("unexpected end of input");
            return text.charAt(pos);
        }

        String string() throws SyntaxException {
            pos++; // opening quote
            StringBuilder out = new StringBuilder();
            while (true) {
                char c = peek();
                pos++;
                if (c == '"') return out.toString();
                if (c < 0x20) throw error("control character in a string");
                if (c != '\\') {
                    out.append(c);
                    continue;
                }
                char e = peek();
                pos++;
                switch (e) {
                    case '"': out.append('"'); break;
                    case '\\': out.append('\\'); break;
                    case '/': out.append('/'); break;
                    case 'b': out.append('\b'); break;
                    case 'f': out.append('\f'); break;
                    case 'n': out.append('\n'); break;
                    case 'r': out.append('\r'); break;
                    case 't': out.append('\t'); break;
                    case 'u': out.append(unicodeEscape()); break;
                    default: throw error("bad escape");
                }
            }
        }

        char unicodeEscape() throws SyntaxException {
            if (pos + 4 > text.length()) throw error("bad \\u escape");
            int code = 0;
            for (int i = 0; i < 4; i++) {
                int digit = Character.digit(text.charAt(pos + i), 16);
                // Character.digit also takes non-ASCII digits; JSON allows only 0-9 a-f A-F.
                if (digit < 0 || text.charAt(pos + i) > 'f') throw error("bad \\u escape");
                code = code * 16 + digit;
            }
            pos += 4;
            return (char) code;
        }

        Double number() throws SyntaxException {
            int start = pos;
            if (text.charAt(pos) == '-') pos++;
            if (pos < text.length() && text.charAt(pos) == '0') {
                pos++;
            } else if (digits() == 0) {
                throw error("bad number");
            }
            if (pos < text.length() && text.charAt(pos) == '.') {
                pos++;
                if (digits() == 0) throw error("bad number");
            }
            if (pos < text.length() && (text.charAt(pos) == 'e' || text.charAt(pos) == 'E')) {
                pos++;
                if (pos < text.length() && (text.charAt(pos) == '+' || text.charAt(pos) == '-')) pos++;
                if (digits() == 0) throw error("bad number");
            }
            // The grammar above is a subset of what parseDouble reads; both round to nearest, like JS.
            return Double.parseDouble(text.substring(start, pos));
        }

        int digits() {
            int start = pos;
            while (pos < text.length() && text.charAt(pos) >= '0' && text.charAt(pos) <= '9') pos++;
            return pos - start;
        }
    }

    // --- writing ------------------------------------------------------------

    /** JSON.stringify of maps, lists, strings, numbers, booleans and NULL (a Java null is written as null). */
    public static String stringify(Object value) {
        StringBuilder out = new StringBuilder();
        write(out, value);
        return out.toString();
    }

    private static void write(StringBuilder out, Object value) {
        if (value == null || value == NULL) {
            out.append("null");
        } else if (value instanceof String) {
            writeString(out, (String) value);
        } else if (value instanceof Boolean) {
            out.append(value.toString());
        } else if (value instanceof Number) {
            out.append(number((Number) value));
        } else if (value instanceof Map) {
            out.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> entry : ((Map<?, ?>) value).entrySet()) {
                if (!first) out.append(',');
                first = false;
                writeString(out, String.valueOf(entry.getKey()));
                out.append(':');
                write(out, entry.getValue());
            }
            out.append('}');
        } else if (value instanceof List) {
            out.append('[');
            boolean first = true;
            for (Object item : (List<?>) value) {
                if (!first) out.append(',');
                first = false;
                write(out, item);
            }
            out.append(']');
        } else {
            throw new IllegalArgumentException("cannot write " + value.getClass().getName() + " as JSON");
        }
    }

    private static void writeString(StringBuilder out, String s) {
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"': out.append("\\\""); break;
                case '\\': out.append("\\\\"); break;
                case '\b': out.append("\\b"); break;
                case '\f': out.append("\\f"); break;
                case '\n': out.append("\\n"); break;
                case '\r': out.append("\\r"); break;
                case '\t': out.append("\\t"); break;
                default:
                    if (c < 0x20 || isLoneSurrogate(s, i)) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
            }
        }
        out.append('"');
    }

    /** JSON.stringify escapes unpaired surrogates so its output is always valid UTF-16/UTF-8. */
    private static boolean isLoneSurrogate(String s, int i) {
        char c = s.charAt(i);
        if (Character.isHighSurrogate(c)) return i + 1 >= s.length() || !Character.isLowSurrogate(s.charAt(i + 1));
        if (Character.isLowSurrogate(c)) return i == 0 || !Character.isHighSurrogate(s.charAt(i - 1));
        return false;
    }

    /** JS's Number.prototype.toString for finite values; NaN and infinities become null, as in JSON.stringify. */
    static String number(Number n) {
        if (n instanceof Integer || n instanceof Long) return n.toString();
        double d = n.doubleValue();
        if (Double.isNaN(d) || Double.isInfinite(d)) return "null";
        if (d == 0) return "0"; // also -0
        BigDecimal exact = new BigDecimal(Double.toString(d)).stripTrailingZeros();
        String digits = exact.unscaledValue().abs().toString();
        int k = digits.length();
        int e = k - exact.scale(); // value = 0.digits × 10^e
        String sign = d < 0 ? "-" : "";
        if (k <= e && e <= 21) return sign + digits + repeat('0', e - k);
        if (0 < e && e <= 21) return sign + digits.substring(0, e) + "." + digits.substring(e);
        if (-6 < e && e <= 0) return sign + "0." + repeat('0', -e) + digits;
        String exponent = (e - 1 >= 0 ? "+" : "-") + Math.abs(e - 1);
        String mantissa = k == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
        return sign + mantissa + "e" + exponent;
    }

    private static String repeat(char c, int count) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < count; i++) out.append(c);
        return out.toString();
    }
}
