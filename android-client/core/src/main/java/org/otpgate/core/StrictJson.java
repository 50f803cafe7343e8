package org.otpgate.core;

import java.util.Map;
import java.util.regex.Pattern;
import org.json.JSONException;
import org.json.JSONObject;
import org.json.JSONTokener;

/**
 * JSON through org.json, the platform's parser on Android. org.json reads more
 * than JSON (single quotes, unquoted names and words, comments, ';' and '=>'
 * as separators, hex and octal numbers, empty array elements, a BOM, trailing
 * text), and the phone must act on exactly the payloads the gateway's
 * JSON.parse accepts. So {@link #parseObject} first checks that the text keeps
 * to JSON's tokens and leaves the parsing itself to org.json.
 *
 * One difference goes the other way: org.json refuses a number beyond the
 * double range (1e400) where JSON.parse reads Infinity. No member of the
 * payloads takes Infinity (a number member refuses it, {@code at} counts it as
 * unreadable, as it does null), so such a number is read as null.
 */
final class StrictJson {
    /** The only words JSON has outside strings. */
    private static final Pattern LITERAL =
            Pattern.compile("true|false|null|-?(?:0|[1-9][0-9]*)(?:\\.[0-9]+)?(?:[eE][+-]?[0-9]+)?");

    private StrictJson() {}

    /** The object {@code text} holds, or null when it holds another JSON value; throws when it is not strict JSON. */
    static JSONObject parseObject(String text) throws JSONException {
        JSONTokener tokener = new JSONTokener(checkTokens(text));
        Object value = tokener.nextValue();
        if (tokener.nextClean() != 0) throw new JSONException("text after the JSON value");
        return value instanceof JSONObject ? (JSONObject) value : null;
    }

    /** The text for org.json: {@code text} itself, or with numbers beyond the double range as null. */
    private static String checkTokens(String text) throws JSONException {
        StringBuilder rewritten = null;
        int copied = 0;
        // The token before: 0 at the start, one of {}[]:, or 'v' after a string or a word.
        char previous = 0;
        int i = 0;
        while (i < text.length()) {
            char c = text.charAt(i);
            if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
                i++;
                continue;
            }
            if ("{}[]:,".indexOf(c) >= 0) {
                // org.json reads "[1,]" and "[,1]" as arrays holding nulls.
                if ((c == ',' || c == ']' || c == '}') && previous == ',') throw error(i);
                if (c == ',' && (previous == 0 || previous == '[' || previous == '{' || previous == ':')) throw error(i);
                previous = c;
                i++;
                continue;
            }
            // Two values in a row: org.json glues 1"a" into one unquoted word.
            if (previous == 'v') throw error(i);
            previous = 'v';
            if (c == '"') {
                i = endOfString(text, i);
                continue;
            }
            int end = endOfLiteral(text, i);
            char first = text.charAt(i);
            if ((first == '-' || (first >= '0' && first <= '9')) && Double.isInfinite(Double.parseDouble(text.substring(i, end)))) {
                if (rewritten == null) rewritten = new StringBuilder(text.length());
                rewritten.append(text, copied, i).append("null");
                copied = end;
            }
            i = end;
        }
        return rewritten == null ? text : rewritten.append(text, copied, text.length()).toString();
    }

    private static int endOfString(String text, int start) throws JSONException {
        int i = start + 1;
        while (i < text.length()) {
            char c = text.charAt(i);
            if (c == '"') return i + 1;
            if (c < 0x20) throw error(i);
            if (c == '\\') {
                char e = i + 1 < text.length() ? text.charAt(i + 1) : 0;
                if (e == 'u') {
                    if (i + 6 > text.length() || !isHex(text, i + 2, i + 6)) throw error(i);
                    i += 6;
                    continue;
                }
                // org.json takes any escaped character, \' and \a included.
                if ("\"\\/bfnrt".indexOf(e) < 0 || e == 0) throw error(i);
                i += 2;
                continue;
            }
            i++;
        }
        throw error(start);
    }

    private static int endOfLiteral(String text, int start) throws JSONException {
        int end = start;
        while (end < text.length() && isWordChar(text.charAt(end))) end++;
        if (end == start || !LITERAL.matcher(text.substring(start, end)).matches()) throw error(start);
        return end;
    }

    private static boolean isWordChar(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
    }

    private static boolean isHex(String text, int from, int to) {
        for (int i = from; i < to; i++) {
            char c = text.charAt(i);
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
        }
        return true;
    }

    private static JSONException error(int position) {
        return new JSONException("not JSON at position " + position);
    }

    /** A JSON number with no fractional part, as zod's int() reads it (Integer, Long or Double from org.json). */
    static boolean isWholeNumber(Object value) {
        if (!(value instanceof Number)) return false;
        double d = ((Number) value).doubleValue();
        return !Double.isInfinite(d) && !Double.isNaN(d) && d == Math.rint(d);
    }

    /**
     * Maps, lists, strings, numbers, booleans and {@link JSONObject#NULL} as JSON, members in
     * insertion order. An unpaired surrogate is escaped (as JSON.stringify does): written raw it
     * would become '?' in UTF-8, and an ack would no longer name its job.
     */
    static String stringify(Map<String, ?> value) {
        // org.json writes '/' as "\/"; JSON.stringify does not, and the ledger snapshot is shared with the simulator.
        // Every backslash of the text is written doubled, so a backslash right before '/' is always that escape.
        String text = new JSONObject(value).toString().replace("\\/", "/");
        StringBuilder out = null;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            boolean lone = Character.isHighSurrogate(c)
                    ? i + 1 >= text.length() || !Character.isLowSurrogate(text.charAt(i + 1))
                    : Character.isLowSurrogate(c) && (i == 0 || !Character.isHighSurrogate(text.charAt(i - 1)));
            if (lone && out == null) out = new StringBuilder(text.substring(0, i));
            if (out != null) {
                if (lone) out.append(String.format("\\u%04x", (int) c));
                else out.append(c);
            }
        }
        return out == null ? text : out.toString();
    }
}
