package org.otpgate.core;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

/**
 * Acks waiting for the broker's PUBACK, in the order they were made, kept in a
 * {@link TextStore} so that a phone restarted while offline still reports what
 * it did: a lost "sent" ack makes the gateway fail over and the user gets the
 * code twice. The gateway ignores repeated acks, so re-publishing is safe.
 */
public final class AckOutbox {
    /** Far more than a phone sends in the hours an outage lasts; past it the oldest go. */
    public static final int MAX_PENDING = 5_000;

    private final LinkedHashMap<String, Ack> pending = new LinkedHashMap<>();
    private final TextStore store;
    private final int maxPending;

    private AckOutbox(TextStore store, int maxPending) {
        this.store = store;
        this.maxPending = maxPending;
    }

    /** Loads what a previous run left; a damaged file is dropped (acks are a courtesy, the ledger is the safety). */
    public static AckOutbox open(TextStore store) {
        return open(store, MAX_PENDING);
    }

    static AckOutbox open(TextStore store, int maxPending) {
        AckOutbox outbox = new AckOutbox(store, maxPending);
        try {
            String text = store.read();
            JSONObject saved = text == null ? null : StrictJson.parseObject(text);
            Object acks = saved == null ? null : saved.opt("acks");
            if (acks instanceof JSONArray) {
                for (int i = 0; i < ((JSONArray) acks).length(); i++) {
                    Object item = ((JSONArray) acks).opt(i);
                    if (!(item instanceof String)) continue;
                    Parsed<Ack> ack = Ack.parse((String) item);
                    if (ack.isOk()) outbox.pending.put(ack.value().key(), ack.value());
                }
            }
        } catch (IOException | JSONException e) {
            // Start empty.
        }
        return outbox;
    }

    /** Returns false when the outbox could not be saved (the ack is still kept in memory). */
    public synchronized boolean add(Ack ack) {
        pending.put(ack.key(), ack);
        Iterator<String> oldest = pending.keySet().iterator();
        while (pending.size() > maxPending && oldest.hasNext()) {
            oldest.next();
            oldest.remove();
        }
        return save();
    }

    public synchronized List<Ack> pending() {
        return new ArrayList<>(pending.values());
    }

    /** The broker has the ack with this {@link Ack#key()}. */
    public synchronized void confirm(String key) {
        if (pending.remove(key) != null) save();
    }

    public synchronized int size() {
        return pending.size();
    }

    private boolean save() {
        List<Object> acks = new ArrayList<>();
        for (Ack ack : pending.values()) acks.add(ack.toJson());
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("version", 1);
        out.put("acks", acks);
        try {
            store.write(StrictJson.stringify(out));
            return true;
        } catch (IOException e) {
            return false;
        }
    }
}
