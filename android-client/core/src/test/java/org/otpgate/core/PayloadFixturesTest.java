package org.otpgate.core;

import static org.junit.Assert.assertEquals;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.junit.runners.Parameterized;
import org.junit.runners.Parameterized.Parameters;

/**
 * Every fixture of test/fixtures/mqtt-payloads.json through the core's parsers,
 * which must reach the fixture's verdict: the same file that
 * test/android/payload-fixtures.test.ts runs through the server's schemas and
 * the phone simulator's rules. One JUnit test per fixture.
 *
 * {@link #main} prints the core's verdict on every fixture instead, one JSON
 * line each ({"fixture":"kind: name","accepted":true|false}), for
 * payload-fixtures.test.ts to set beside the gateway's and the simulator's
 * (scripts/jvm-test.sh --fixture-verdicts).
 */
@RunWith(Parameterized.class)
public class PayloadFixturesTest {
    private final JSONObject fixture;

    public PayloadFixturesTest(String label, JSONObject fixture) {
        this.fixture = fixture;
    }

    /** -Dotpgate.fixtures (set by scripts/jvm-test.sh and Gradle), else found from the working directory. */
    static File fixturesFile() {
        String configured = System.getProperty("otpgate.fixtures");
        if (configured != null) return new File(configured);
        for (String candidate : new String[] {"test/fixtures/mqtt-payloads.json", "../test/fixtures/mqtt-payloads.json", "../../test/fixtures/mqtt-payloads.json"}) {
            File file = new File(candidate);
            if (file.exists()) return file;
        }
        throw new IllegalStateException("test/fixtures/mqtt-payloads.json not found; pass -Dotpgate.fixtures=<path>");
    }

    @Parameters(name = "{0}")
    public static Collection<Object[]> fixtures() throws IOException, JSONException {
        String text = new String(Files.readAllBytes(fixturesFile().toPath()), StandardCharsets.UTF_8);
        List<Object[]> out = new ArrayList<>();
        JSONArray all = new JSONObject(text).getJSONArray("fixtures");
        for (int i = 0; i < all.length(); i++) {
            JSONObject fixture = all.getJSONObject(i);
            out.add(new Object[] {fixture.opt("kind") + ": " + fixture.opt("name"), fixture});
        }
        if (out.size() < 30) throw new IllegalStateException("only " + out.size() + " fixtures");
        return out;
    }

    /** A string payload is the exact text; anything else is sent as JSON.stringify of it. */
    private static String payload(JSONObject fixture) {
        Object payload = fixture.opt("payload");
        return payload instanceof String ? (String) payload : payload.toString();
    }

    static boolean accepted(JSONObject fixture) {
        String text = payload(fixture);
        switch (fixture.optString("kind")) {
            case "job": {
                Parsed<OutboundMessage> parsed = PayloadRules.parseOutbound(text);
                return parsed.isOk() && parsed.value().kind == OutboundMessage.Kind.JOB;
            }
            case "cancel": {
                Parsed<OutboundMessage> parsed = PayloadRules.parseOutbound(text);
                return parsed.isOk() && parsed.value().kind == OutboundMessage.Kind.CANCEL;
            }
            case "ack":
                return Ack.parse(text).isOk();
            case "status":
                return DeviceStatus.validate(text).isOk();
            case "provisioning":
                try {
                    Provisioning.parse(text);
                    return true;
                } catch (Provisioning.InvalidException e) {
                    return false;
                }
            default:
                throw new IllegalStateException("unknown kind " + fixture.opt("kind"));
        }
    }

    @Test
    public void verdict() {
        assertEquals(fixture.optString("why"), fixture.opt("valid"), accepted(fixture));
    }

    /**
     * On a valid ack or status, {@code readsAt} is the {@code at} it must read as: the ISO instant
     * in UTC, or null when it counts as absent. Acks through {@link Ack#parse}; statuses (which the
     * phone only writes) through {@link IsoTime#readReported}, the function Ack.parse uses.
     */
    @Test
    public void readsAt() throws JSONException {
        if (!fixture.has("readsAt")) return;
        Object expected = fixture.opt("readsAt");
        String text = payload(fixture);
        Long at;
        if ("ack".equals(fixture.opt("kind"))) {
            at = Ack.parse(text).value().at;
        } else {
            at = IsoTime.readReported(StrictJson.parseObject(text).opt("at"));
        }
        assertEquals(fixture.optString("why"), expected == JSONObject.NULL ? null : expected, at == null ? null : IsoTime.format(at));
    }

    /** The core's verdict on every fixture, one JSON line each on stdout. */
    public static void main(String[] args) throws IOException, JSONException {
        for (Object[] row : fixtures()) {
            Map<String, Object> line = new LinkedHashMap<>();
            line.put("fixture", row[0]);
            line.put("accepted", accepted((JSONObject) row[1]));
            System.out.println(new JSONObject(line).toString());
        }
    }
}
