package org.otpgate.core;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.regex.Pattern;
import org.json.JSONException;
import org.json.JSONObject;

/**
 * What a payload on {@code sms/out/<id>} means. One set of payload rules serves
 * the gateway's schemas (broker/payloads.ts), the phone simulator
 * (tools/phone-simulator/job-rules.ts) and this core: the shared fixtures
 * (test/fixtures/mqtt-payloads.json) hold all three to the same verdict for
 * every payload, so the phone acts on exactly the jobs the gateway sends.
 */
public final class PayloadRules {
    /**
     * The one cap of every payload (jobs, cancels, acks, statuses), in UTF-8 bytes, as the broker's:
     * a job is far smaller, and parsing megabytes is how a phone runs out of memory.
     */
    public static final int MAX_PAYLOAD_BYTES = 8 * 1024;
    /** Ten concatenated SMS, the usual carrier and Twilio ceiling. */
    public static final int MAX_BODY_CHARS = 1600;
    public static final int MAX_ID_CHARS = 128;
    public static final int MAX_SIM_SLOT = 7;

    /** E.164: a plus, a non-zero country code digit, 7 to 15 digits in all. */
    private static final Pattern E164 = Pattern.compile("\\+[1-9][0-9]{6,14}");
    /** Invisible characters in ids would corrupt log lines. */
    private static final Pattern CONTROL_CHARS = Pattern.compile("[\\x00-\\x1f\\x7f]");

    private PayloadRules() {}

    /** Raw MQTT bytes: the size cap first, then strict UTF-8, then the JSON rules. */
    public static Parsed<OutboundMessage> parseOutbound(byte[] payload) {
        if (payload.length > MAX_PAYLOAD_BYTES) return tooBig(payload.length);
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(payload))
                    .toString();
        } catch (CharacterCodingException e) {
            return Parsed.invalid("payload is not UTF-8");
        }
        return parseOutbound(text);
    }

    public static Parsed<OutboundMessage> parseOutbound(String text) {
        int size = utf8Length(text);
        if (size > MAX_PAYLOAD_BYTES) return tooBig(size);
        JSONObject value;
        try {
            value = StrictJson.parseObject(text);
        } catch (JSONException e) {
            return Parsed.invalid("payload is not JSON");
        }
        if (value == null) return Parsed.invalid("payload is not a JSON object");

        String idProblem = jobIdProblem(value.opt("id"));
        if (idProblem != null) return Parsed.invalid(idProblem);
        String id = (String) value.opt("id");

        // cancel:true makes it a cancel whatever else it carries (never sent); any value but true or false is refused.
        if (value.has("cancel")) {
            Object cancel = value.opt("cancel");
            if (Boolean.TRUE.equals(cancel)) return Parsed.ok(OutboundMessage.cancel(id));
            // cancel:false reads as "not a cancel": the payload must then be a complete job.
            if (!Boolean.FALSE.equals(cancel)) return Parsed.invalid("job " + id + ": cancel must be true");
        }
        Parsed<SmsJob> job = parseJobFields(id, value);
        return job.isOk() ? Parsed.ok(OutboundMessage.job(job.value())) : Parsed.invalid(job.reason());
    }

    private static Parsed<SmsJob> parseJobFields(String id, JSONObject value) {
        Object to = value.opt("to");
        if (!(to instanceof String) || !E164.matcher((String) to).matches()) {
            return Parsed.invalid("job " + id + ": to must be an E.164 number, e.g. +254700000001");
        }
        Object body = value.opt("body");
        if (!(body instanceof String) || ((String) body).isEmpty() || ((String) body).length() > MAX_BODY_CHARS) {
            return Parsed.invalid("job " + id + ": body must be 1 to " + MAX_BODY_CHARS + " characters");
        }
        Object expiresAtText = value.opt("expiresAt");
        Long expiresAt = expiresAtText instanceof String ? IsoTime.parse((String) expiresAtText) : null;
        if (expiresAt == null) {
            return Parsed.invalid("job " + id + ": expiresAt must be an RFC 3339 time with seconds and a zone, e.g. 2030-01-01T00:00:00Z");
        }
        Integer sim = null;
        if (value.has("sim")) {
            Object slot = value.opt("sim");
            // Absent means the default SIM; null (JSONObject.NULL) is refused like any other non-number.
            if (!StrictJson.isWholeNumber(slot) || ((Number) slot).doubleValue() < 0 || ((Number) slot).doubleValue() > MAX_SIM_SLOT) {
                return Parsed.invalid("job " + id + ": sim must be a SIM slot number 0.." + MAX_SIM_SLOT);
            }
            sim = ((Number) slot).intValue();
        }
        return Parsed.ok(new SmsJob(id, (String) to, (String) body, expiresAt, sim));
    }

    /** Null when {@code id} is a valid job id; shared by jobs, cancels and acks. */
    static String jobIdProblem(Object id) {
        if (!(id instanceof String)) return "id must be a string";
        String s = (String) id;
        if (s.isEmpty() || s.length() > MAX_ID_CHARS || CONTROL_CHARS.matcher(s).find()) {
            return "id must be 1 to " + MAX_ID_CHARS + " printable characters";
        }
        return null;
    }

    private static Parsed<OutboundMessage> tooBig(int size) {
        return Parsed.invalid("payload is " + size + " bytes, over the " + MAX_PAYLOAD_BYTES + " byte limit");
    }

    /** Bytes of the UTF-8 encoding, counting an unpaired surrogate as the 3 bytes of U+FFFD (as Node does). */
    public static int utf8Length(String s) {
        int bytes = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < 0x80) {
                bytes += 1;
            } else if (c < 0x800) {
                bytes += 2;
            } else if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                bytes += 4;
                i++;
            } else {
                bytes += 3;
            }
        }
        return bytes;
    }
}
