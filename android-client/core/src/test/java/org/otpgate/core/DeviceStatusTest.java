package org.otpgate.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import org.junit.Test;

public class DeviceStatusTest {
    private static final long NOW = IsoTime.parse("2030-01-01T12:00:00Z");

    @Test
    public void writesTheOnlineStatus() {
        String status = DeviceStatus.online(87, 3, Arrays.asList(new SimInfo(0, "Safaricom"), new SimInfo(1, null)), "otpgate-android/1.0.0", NOW);
        assertEquals("{\"online\":true,\"battery\":87,\"signal\":3,\"sims\":[{\"slot\":0,\"carrier\":\"Safaricom\",\"number\":null},"
                + "{\"slot\":1,\"carrier\":\"\",\"number\":null}],\"app\":\"otpgate-android/1.0.0\",\"at\":\"2030-01-01T12:00:00.000Z\"}", status);
        assertTrue(DeviceStatus.validate(status).value());
    }

    @Test
    public void clampsWhatTheGatewayWouldRefuse() {
        List<SimInfo> many = new ArrayList<>();
        for (int i = 0; i < 12; i++) many.add(new SimInfo(i % 8, "c"));
        StringBuilder app = new StringBuilder();
        for (int i = 0; i < 150; i++) app.append('a');
        String status = DeviceStatus.online(140, -2, many, app.toString(), NOW);
        assertTrue(status.contains("\"battery\":100,\"signal\":0"));
        assertTrue(DeviceStatus.validate(status).isOk());
        assertTrue(DeviceStatus.online(-5, 9, Collections.<SimInfo>emptyList(), "x", NOW).contains("\"battery\":0,\"signal\":4"));
    }

    @Test
    public void writesTheOfflineStatusAndTheWill() {
        assertEquals("{\"online\":false,\"at\":\"2030-01-01T12:00:00.000Z\"}", DeviceStatus.offline(NOW));
        assertEquals("{\"online\":false}", DeviceStatus.WILL_PAYLOAD);
        assertFalse(DeviceStatus.validate(DeviceStatus.offline(NOW)).value());
        assertFalse(DeviceStatus.validate(DeviceStatus.WILL_PAYLOAD).value());
    }

    @Test
    public void readsWithTheGatewaysRules() {
        String[] refused = {
            "{\"online\":\"yes\"}",
            "{}",
            "{\"online\":true,\"battery\":50.5,\"signal\":2,\"sims\":[],\"app\":\"a\",\"at\":\"2030-01-01T00:00:00Z\"}",
            "{\"online\":true,\"battery\":101,\"signal\":2,\"sims\":[],\"app\":\"a\",\"at\":\"2030-01-01T00:00:00Z\"}",
            "{\"online\":true,\"battery\":50,\"signal\":5,\"sims\":[],\"app\":\"a\",\"at\":\"2030-01-01T00:00:00Z\"}",
            "{\"online\":true,\"battery\":50,\"signal\":2,\"sims\":[1,2,3,4,5,6,7,8,9],\"app\":\"a\",\"at\":\"2030-01-01T00:00:00Z\"}",
            "{\"online\":false,\"battery\":50}",
            "{\"online\":false,\"battery\":50,\"at\":1893499200}",
            "{\"online\":false,\"sims\":null}",
            "{\"online\":true,\"signal\":2.5}",
            "{\"online\":true,\"battery\":null}",
            "{\"online\":true,\"app\":\"a\",\"pad\":\"" + repeat('x', PayloadRules.MAX_PAYLOAD_BYTES) + "\"}",
        };
        for (String text : refused) assertFalse(text, DeviceStatus.validate(text).isOk());
        assertTrue(DeviceStatus.validate("{\"online\":false,\"at\":\"2030-01-01T00:00:00Z\",\"reason\":\"x\"}").isOk());
        // Every member but online is optional: other clients may report less than this phone does.
        assertTrue(DeviceStatus.validate("{\"online\":true}").value());
        assertTrue(DeviceStatus.validate("{\"online\":true,\"battery\":55,\"app\":\"raw/1\"}").value());
        // A status is never refused for its time: an unreadable one counts as absent.
        for (String text : new String[] {
            "{\"online\":true,\"battery\":50,\"signal\":2,\"sims\":[],\"app\":\"a\",\"at\":\"2030-01-01T00:00:00\"}",
            "{\"online\":false,\"at\":\"yesterday\"}",
            "{\"online\":false,\"at\":1893499200000}",
            "{\"online\":true,\"at\":1893499200}",
            "{\"online\":true,\"at\":false}",
        }) {
            assertTrue(text, DeviceStatus.validate(text).isOk());
        }
    }

    private static String repeat(char c, int n) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < n; i++) out.append(c);
        return out.toString();
    }
}
