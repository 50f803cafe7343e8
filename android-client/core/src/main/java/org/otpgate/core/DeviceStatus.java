package org.otpgate.core;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

/**
 * The retained status on {@code sms/device/<id>}:
 * {@code {"online","battery"?,"signal"?,"sims"?,"app"?,"at"?}}.
 */
public final class DeviceStatus {
    /** The will: exactly these bytes (DESIGN.md), no timestamp since it is set at connect time. */
    public static final String WILL_PAYLOAD = "{\"online\":false}";
    /** broker/payloads.ts limits. */
    public static final int MAX_SIMS = 8;
    public static final int MAX_APP_CHARS = 100;

    private DeviceStatus() {}

    /** Published on connect and at every heartbeat. Battery 0..100 and signal bars 0..4 are clamped, as the simulator does. */
    public static String online(int battery, int signal, List<SimInfo> sims, String app, long now) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("online", true);
        out.put("battery", clamp(battery, 100));
        out.put("signal", clamp(signal, 4));
        List<Object> simList = new ArrayList<>();
        for (SimInfo sim : sims) {
            if (simList.size() < MAX_SIMS) simList.add(sim.toMap());
        }
        out.put("sims", simList);
        out.put("app", app.length() > MAX_APP_CHARS ? app.substring(0, MAX_APP_CHARS) : app);
        out.put("at", IsoTime.format(now));
        return StrictJson.stringify(out);
    }

    /** Published before a clean disconnect, when the will does not fire. */
    public static String offline(long now) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("online", false);
        out.put("at", IsoTime.format(now));
        return StrictJson.stringify(out);
    }

    private static int clamp(int value, int max) {
        return Math.max(0, Math.min(max, value));
    }

    /**
     * Checks a status with the gateway's rules (broker/payloads.ts): at most
     * {@link PayloadRules#MAX_PAYLOAD_BYTES}; {@code online} is required and
     * everything else optional (other clients may know less than this phone);
     * {@code at} is never a reason to refuse (an unreadable one counts as
     * absent, as in an ack); an online status may carry a whole
     * battery 0..100, whole signal bars 0..4, at most 8 SIMs and an app name
     * of at most 100 characters; an offline one carries none of those. Unknown
     * members are ignored. {@link #online} and {@link #offline} always pass.
     */
    public static Parsed<Boolean> validate(String text) {
        int size = PayloadRules.utf8Length(text);
        if (size > PayloadRules.MAX_PAYLOAD_BYTES) {
            return Parsed.invalid("status is " + size + " bytes, over the " + PayloadRules.MAX_PAYLOAD_BYTES + " byte limit");
        }
        JSONObject value;
        try {
            value = StrictJson.parseObject(text);
        } catch (JSONException e) {
            return Parsed.invalid("status is not JSON");
        }
        if (value == null) return Parsed.invalid("status is not a JSON object");
        Object online = value.opt("online");
        if (!(online instanceof Boolean)) return Parsed.invalid("online must be true or false");
        if (!(Boolean) online) {
            for (String field : new String[] {"battery", "signal", "sims", "app"}) {
                if (value.has(field)) return Parsed.invalid("an offline status carries no " + field);
            }
            return Parsed.ok(false);
        }
        if (value.has("battery") && !wholeNumber(value.opt("battery"), 100)) {
            return Parsed.invalid("battery must be a whole number 0..100");
        }
        if (value.has("signal") && !wholeNumber(value.opt("signal"), 4)) {
            return Parsed.invalid("signal must be a whole number 0..4");
        }
        Object sims = value.opt("sims");
        if (value.has("sims") && !(sims instanceof JSONArray && ((JSONArray) sims).length() <= MAX_SIMS)) {
            return Parsed.invalid("sims must be a list of at most " + MAX_SIMS);
        }
        Object app = value.opt("app");
        if (value.has("app") && !(app instanceof String && ((String) app).length() <= MAX_APP_CHARS)) {
            return Parsed.invalid("app must be a string of at most " + MAX_APP_CHARS + " characters");
        }
        return Parsed.ok(true);
    }

    private static boolean wholeNumber(Object value, int max) {
        return StrictJson.isWholeNumber(value) && ((Number) value).doubleValue() >= 0 && ((Number) value).doubleValue() <= max;
    }
}
