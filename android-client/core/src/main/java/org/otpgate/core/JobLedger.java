package org.otpgate.core;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.json.JSONException;
import org.json.JSONObject;

/**
 * What the phone remembers between messages and restarts: the job ids it has
 * handled with their latest status, and cancels that came for ids not seen yet
 * (ledger.ts). The snapshot format is the simulator's, version 1.
 */
public final class JobLedger implements JobRules.Memory {
    /**
     * A handled id may be forgotten an hour after its job expired: a later
     * redelivery is refused as EXPIRED and still never sent. The hour covers a
     * phone clock running behind the gateway's.
     */
    public static final long HANDLED_GRACE_MS = 60L * 60 * 1000;
    /** A cancel for an unseen job waits this long for the job. */
    public static final long CANCEL_RETENTION_MS = 24L * 60 * 60 * 1000;
    /** Cancels cost nothing to send, so their memory is capped (oldest forgotten first). */
    public static final int MAX_REMEMBERED_CANCELS = 10_000;

    public static final class Entry {
        public final AckStatus status;
        /** Set when status is FAILED. */
        public final String error;
        public final long expiresAt;

        Entry(AckStatus status, String error, long expiresAt) {
            this.status = status;
            this.error = error;
            this.expiresAt = expiresAt;
        }
    }

    private final Map<String, Entry> handled = new LinkedHashMap<>();
    /** id → when the cancel arrived; insertion order is arrival order. */
    private final LinkedHashMap<String, Long> cancelled = new LinkedHashMap<>();

    @Override
    public boolean isHandled(String id) {
        return handled.containsKey(id);
    }

    @Override
    public boolean isCancelled(String id) {
        return cancelled.containsKey(id);
    }

    public Entry handled(String id) {
        return handled.get(id);
    }

    public void record(String id, AckStatus status, String error, long expiresAt) {
        handled.put(id, new Entry(status, status == AckStatus.FAILED ? error : null, expiresAt));
    }

    /** Changes the status of a handled id; unknown ids are ignored. */
    public void setStatus(String id, AckStatus status, String error) {
        Entry entry = handled.get(id);
        if (entry != null) record(id, status, error, entry.expiresAt);
    }

    /** The ack restating the latest status of {@code id}, for a redelivered job; null when unknown. */
    public Ack latestAck(String id, long now) {
        Entry entry = handled.get(id);
        if (entry == null) return null;
        if (entry.status == AckStatus.FAILED) return Ack.failed(id, entry.error == null ? "UNKNOWN" : entry.error, now);
        return Ack.of(id, entry.status, now);
    }

    public void rememberCancel(String id, long now) {
        cancelled.remove(id);
        cancelled.put(id, now);
        Iterator<String> oldest = cancelled.keySet().iterator();
        while (cancelled.size() > MAX_REMEMBERED_CANCELS && oldest.hasNext()) {
            oldest.next();
            oldest.remove();
        }
    }

    public void prune(long now) {
        handled.values().removeIf(entry -> entry.expiresAt + HANDLED_GRACE_MS < now);
        cancelled.values().removeIf(at -> at + CANCEL_RETENTION_MS < now);
    }

    public int handledCount() {
        return handled.size();
    }

    public int cancelledCount() {
        return cancelled.size();
    }

    public String toJson() {
        Map<String, Object> handledOut = new LinkedHashMap<>();
        for (Map.Entry<String, Entry> e : handled.entrySet()) {
            Map<String, Object> saved = new LinkedHashMap<>();
            saved.put("status", e.getValue().status.wire);
            if (e.getValue().error != null) saved.put("error", e.getValue().error);
            saved.put("expiresAt", IsoTime.format(e.getValue().expiresAt));
            handledOut.put(e.getKey(), saved);
        }
        Map<String, Object> cancelledOut = new LinkedHashMap<>();
        for (Map.Entry<String, Long> e : cancelled.entrySet()) cancelledOut.put(e.getKey(), IsoTime.format(e.getValue()));
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("version", 1);
        out.put("handled", handledOut);
        out.put("cancelled", cancelledOut);
        return StrictJson.stringify(out);
    }

    /**
     * Rebuilds a ledger from a snapshot. A malformed snapshot throws rather than
     * starting empty: an empty ledger would let the phone send old jobs again.
     */
    public static JobLedger fromJson(String text, long now) throws CorruptException {
        JSONObject snapshot;
        try {
            snapshot = StrictJson.parseObject(text);
        } catch (JSONException e) {
            throw new CorruptException("state is not JSON");
        }
        if (snapshot == null) throw new CorruptException("state is not a JSON object");
        Object version = snapshot.opt("version");
        if (!(version instanceof Number) || ((Number) version).doubleValue() != 1) throw new CorruptException("state has another version than 1");
        JobLedger ledger = new JobLedger();
        for (Map.Entry<String, Object> e : members(snapshot.opt("handled"))) {
            JSONObject entry = e.getValue() instanceof JSONObject ? (JSONObject) e.getValue() : null;
            AckStatus status = entry == null ? null : AckStatus.fromWire(entry.opt("status"));
            Long expiresAt = entry != null && entry.opt("expiresAt") instanceof String ? IsoTime.parse((String) entry.opt("expiresAt")) : null;
            if (status == null || expiresAt == null) throw new CorruptException("state entry for job " + e.getKey() + " is malformed");
            Object error = entry.opt("error");
            ledger.record(e.getKey(), status, error instanceof String ? (String) error : null, expiresAt);
        }
        for (Map.Entry<String, Object> e : members(snapshot.opt("cancelled"))) {
            Long at = e.getValue() instanceof String ? IsoTime.parse((String) e.getValue()) : null;
            if (at == null) throw new CorruptException("state cancel for job " + e.getKey() + " is malformed");
            ledger.rememberCancel(e.getKey(), at);
        }
        ledger.prune(now);
        return ledger;
    }

    /** The members of a snapshot section in their written order (org.json keeps it). */
    private static List<Map.Entry<String, Object>> members(Object value) throws CorruptException {
        List<Map.Entry<String, Object>> out = new ArrayList<>();
        if (value == null) return out;
        if (!(value instanceof JSONObject)) throw new CorruptException("state section is not an object");
        JSONObject section = (JSONObject) value;
        for (Iterator<String> names = section.keys(); names.hasNext(); ) {
            String name = names.next();
            out.add(new java.util.AbstractMap.SimpleEntry<>(name, section.opt(name)));
        }
        return out;
    }

    public static final class CorruptException extends Exception {
        CorruptException(String message) {
            super(message);
        }
    }
}
