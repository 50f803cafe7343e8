package org.otpgate.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertSame;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;
import org.junit.Test;

public class StrictJsonTest {
    private static void refused(String text) {
        try {
            StrictJson.parseObject(text);
            fail("accepted " + text);
        } catch (JSONException expected) {
            // as JSON.parse, or not an object
        }
    }

    @Test
    public void readsEveryKindOfValueThroughOrgJson() throws Exception {
        JSONObject value = StrictJson.parseObject(" {\"s\":\"x\",\"n\":-1.5e2,\"t\":true,\"f\":false,\"z\":null,\"a\":[1,{}]} ");
        assertEquals("x", value.opt("s"));
        assertEquals(-150.0, ((Number) value.opt("n")).doubleValue(), 0);
        assertEquals(Boolean.TRUE, value.opt("t"));
        assertEquals(Boolean.FALSE, value.opt("f"));
        assertSame(JSONObject.NULL, value.opt("z"));
        assertTrue(value.has("z"));
        assertFalse(value.has("missing"));
        assertEquals(2, ((JSONArray) value.opt("a")).length());
    }

    @Test
    public void refusesWhatJsonParseRefusesAndOrgJsonWouldTake() {
        for (String text : new String[] {
            "", "{", "{'id':'x'}", "{id:\"x\"}", "{\"a\":1,}", "{\"a\":[1,]}", "{\"a\":[,1]}", "{\"a\":[1,,2]}",
            "{\"a\":1;\"b\":2}", "{\"a\"=1}", "{\"a\"=>1}", "/* c */{}", "{} // c", "# c\n{}", "{\"a\":01}",
            "{\"a\":1.}", "{\"a\":.5}", "{\"a\":+1}", "{\"a\":NaN}", "{\"a\":0x10}", "{\"a\":\"tab\there\"}",
            "{\"a\":\"\\x41\"}", "{\"a\":\"\\'\"}", "{\"a\":\"\\u12\"}", "{\"a\":\"\\u00g0\"}", "{\"a\":\"unterminated}",
            "{} {}", "{} 1", "\uFEFF{}", "\u00A0{}", "{\"a\":tru}", "{\"a\":True}", "{\"a\":x}", "{\"a\":1\"b\"}",
            "{\"a\":\"b\"1}", "[1 2]",
        }) {
            refused(text);
        }
    }

    @Test
    public void anotherJsonValueIsNoObject() throws Exception {
        for (String text : new String[] {"[]", "\"text\"", "1", "null", " true "}) assertEquals(text, null, StrictJson.parseObject(text));
    }

    @Test
    public void readsANumberBeyondTheDoubleRangeAsNullWhereJsonParseReadsInfinity() throws Exception {
        JSONObject value = StrictJson.parseObject("{\"a\":1e400,\"b\":[-1E+999],\"c\":\"1e400\",\"d\":1e308}");
        assertSame(JSONObject.NULL, value.opt("a"));
        assertSame(JSONObject.NULL, ((JSONArray) value.opt("b")).opt(0));
        assertEquals("1e400", value.opt("c"));
        assertEquals(1e308, ((Number) value.opt("d")).doubleValue(), 0);
    }

    @Test
    public void theGuardIsNeededBecauseOrgJsonIsLenient() throws Exception {
        String lenient = "{id:'x'; to=>'+254700000001' /* c */}";
        assertEquals("x", new JSONObject(lenient).getString("id"));
        refused(lenient);
    }

    @Test
    public void aRepeatedKeyKeepsItsLastValueAsInJavaScript() throws Exception {
        assertEquals(3, ((Number) StrictJson.parseObject("{\"a\":1,\"b\":2,\"a\":3}").opt("a")).intValue());
    }

    @Test
    public void wholeNumbersAreThoseWithoutAFraction() throws Exception {
        JSONObject value = StrictJson.parseObject("{\"a\":7.0,\"b\":-0,\"c\":1.5,\"e\":12345678901,\"f\":7}");
        assertTrue(StrictJson.isWholeNumber(value.opt("a")));
        assertTrue(StrictJson.isWholeNumber(value.opt("b")));
        assertFalse(StrictJson.isWholeNumber(value.opt("c")));
        assertFalse(StrictJson.isWholeNumber(Double.POSITIVE_INFINITY));
        assertTrue(StrictJson.isWholeNumber(value.opt("e")));
        assertTrue(StrictJson.isWholeNumber(value.opt("f")));
        assertFalse(StrictJson.isWholeNumber("1"));
        assertFalse(StrictJson.isWholeNumber(JSONObject.NULL));
    }

    @Test
    public void readsEscapesAndLoneSurrogates() throws Exception {
        JSONObject value = StrictJson.parseObject("{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00E9\\ud83d\\ude00\\ud800\",\"r\":\"\u2028 \u007f\"}");
        assertEquals("\"\\/\b\f\n\r\t\u00e9\ud83d\ude00\ud800", value.opt("s"));
        assertEquals("\u2028 \u007f", value.opt("r"));
    }

    @Test
    public void writesMembersInOrderAndEscapesLoneSurrogates() throws Exception {
        Map<String, Object> value = new LinkedHashMap<>();
        value.put("s", "q\"\n\u0001😀\ud800");
        value.put("i", 42);
        value.put("l", 1893456000000L);
        value.put("n", JSONObject.NULL);
        value.put("a", Arrays.asList(true, false));
        String text = StrictJson.stringify(value);
        assertEquals("{\"s\":\"q\\\"\\n\\u0001😀\\ud800\",\"i\":42,\"l\":1893456000000,\"n\":null,\"a\":[true,false]}", text);
        assertEquals("q\"\n\u0001😀\ud800", StrictJson.parseObject(text).opt("s"));
    }
}
