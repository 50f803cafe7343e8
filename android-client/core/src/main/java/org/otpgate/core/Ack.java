package org.otpgate.core;

import java.util.LinkedHashMap;
import java.util.Map;
import org.json.JSONException;
import org.json.JSONObject;

/**
 * An ack on {@code sms/ack/<id>}: {@code {"id","status","error"?,"at"?}}. The
 * phone sets {@code error} exactly when the status is {@code failed}, always
 * with a stable code (see {@link SmsResultCodes}, {@link JobRules}), and
 * always writes {@code at} as an RFC 3339 instant in UTC; reading, it takes an ack
 * whatever its {@code at} says, as the gateway does.
 */
public final class Ack {
    /** broker/payloads.ts: longer errors make the gateway refuse the ack. */
    public static final int MAX_ERROR_CHARS = 200;

    public final String id;
    public final AckStatus status;
    /** Non-null exactly when status is FAILED. */
    public final String error;
    /**
     * Epoch ms. Never null on an ack the phone makes ({@link #of}, {@link #failed}); null on one
     * read without an {@code at} it could read ({@link IsoTime#readReported}).
     */
    public final Long at;

    private Ack(String id, AckStatus status, String error, Long at) {
        this.id = id;
        this.status = status;
        this.error = error;
        this.at = at;
    }

    public static Ack of(String id, AckStatus status, long at) {
        if (status == AckStatus.FAILED) throw new IllegalArgumentException("a failed ack needs an error: use Ack.failed");
        return new Ack(id, status, null, at);
    }

    public static Ack failed(String id, String error, long at) {
        if (error == null || error.isEmpty()) throw new IllegalArgumentException("a failed ack needs an error");
        // Codes are short; cutting here keeps a long message from making the gateway drop the whole ack.
        String cut = error.length() > MAX_ERROR_CHARS ? error.substring(0, MAX_ERROR_CHARS) : error;
        return new Ack(id, AckStatus.FAILED, cut, at);
    }

    public String toJson() {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("id", id);
        out.put("status", status.wire);
        if (error != null) out.put("error", error);
        if (at != null) out.put("at", IsoTime.format(at));
        return StrictJson.stringify(out);
    }

    /**
     * Reads an ack with the gateway's rules (broker/payloads.ts): at most
     * {@link PayloadRules#MAX_PAYLOAD_BYTES}, a job id, a known status, and an
     * error of 1..200 characters exactly when failed. {@code at} is never a
     * reason to refuse: read with {@link IsoTime#readReported}, an unreadable
     * one counts as absent. The phone never publishes an ack that fails this.
     */
    public static Parsed<Ack> parse(String text) {
        int size = PayloadRules.utf8Length(text);
        if (size > PayloadRules.MAX_PAYLOAD_BYTES) {
            return Parsed.invalid("ack is " + size + " bytes, over the " + PayloadRules.MAX_PAYLOAD_BYTES + " byte limit");
        }
        JSONObject value;
        try {
            value = StrictJson.parseObject(text);
        } catch (JSONException e) {
            return Parsed.invalid("ack is not JSON");
        }
        if (value == null) return Parsed.invalid("ack is not a JSON object");
        String idProblem = PayloadRules.jobIdProblem(value.opt("id"));
        if (idProblem != null) return Parsed.invalid(idProblem);
        AckStatus status = AckStatus.fromWire(value.opt("status"));
        if (status == null) return Parsed.invalid("status must be received, sent, delivered or failed");
        Long when = IsoTime.readReported(value.opt("at"));
        Object error = value.opt("error");
        if (status != AckStatus.FAILED) {
            if (value.has("error")) return Parsed.invalid("error belongs only to a failed ack");
            return Parsed.ok(new Ack((String) value.opt("id"), status, null, when));
        }
        if (!(error instanceof String) || ((String) error).isEmpty() || ((String) error).length() > MAX_ERROR_CHARS) {
            return Parsed.invalid("a failed ack needs an error string of 1 to " + MAX_ERROR_CHARS + " characters");
        }
        return Parsed.ok(new Ack((String) value.opt("id"), status, (String) error, when));
    }

    /** Identifies this ack in the outbox: a job has at most one ack per status. */
    public String key() {
        return id + "\u0000" + status.wire;
    }

    @Override
    public String toString() {
        return "Ack{" + id + " " + status.wire + (error != null ? " " + error : "") + "}";
    }
}
