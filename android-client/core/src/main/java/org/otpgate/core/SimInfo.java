package org.otpgate.core;

import java.util.LinkedHashMap;
import java.util.Map;
import org.json.JSONObject;

/** One active SIM as the heartbeat reports it (the phone simulator's shape). */
public final class SimInfo {
    public final int slot;
    public final String carrier;

    public SimInfo(int slot, String carrier) {
        this.slot = slot;
        this.carrier = carrier == null ? "" : carrier;
    }

    Map<String, Object> toMap() {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("slot", slot);
        out.put("carrier", carrier);
        // The SIM's own number is left out on purpose: it needs READ_PHONE_NUMBERS and statuses are stored and shown.
        out.put("number", JSONObject.NULL);
        return out;
    }
}
