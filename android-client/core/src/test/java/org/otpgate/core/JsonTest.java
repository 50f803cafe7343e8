package org.otpgate.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertSame;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.Test;

public class JsonTest {
    private static Object parse(String text) throws Json.SyntaxException {
        return Json.parse(text);
    }

    private static void refused(String text) {
        try {
            Json.parse(text);
            fail("accepted " + text);
        } catch (Json.SyntaxException expected) {
            // as JSON.parse
        }
    }

    @Test
    public void readsEveryKindOfValue() throws Exception {
        Map<String, Object> value = Json.asObject(parse(" {\"s\":\"x\",\"n\":-1.5e2,\"t\":true,\"f\":false,\"z\":null,\"a\":[1,{}]} "));
        assertEquals("x", value.get("s"));
        assertEquals(-150.0, value.get("n"));
        assertEquals(Boolean.TRUE, value.get("t"));
        assertEquals(Boolean.FALSE, value.get("f"));
        assertSame(Json.NULL, value.get("z"));
        assertEquals(Arrays.asList(1.0, new LinkedHashMap<String, Object>()), value.get("a"));
        assertEquals(Arrays.asList("id", "n"), Arrays.asList(Json.asObject(parse("{\"id\":1,\"n\":2}")).keySet().toArray()));
    }

    @Test
    public void refusesWhatJsonParseRefuses() {
        for (String text : new String[] {
            "", "{", "{'id':'x'}", "{id:\"x\"}", "{\"a\":1,}", "[1,]", "{\"a\":1;\"b\":2}", "{\"a\"=1}",
            "/* c */{}", "{} // c", "# c\n{}", "01", "1.", ".5", "+1", "NaN", "Infinity", "-", "1e", "0x10",
            "\"tab\there\"", "\"\\x41\"", "\"\\u12\"", "\"\\u00g0\"", "\"unterminated", "{} {}", "\uFEFF{}",
            "\u00A0{}", "tru", "nul", "True", "\"\\U0041\"", "[1 2]",
        }) {
            refused(text);
        }
    }

    @Test
    public void androidsOrgJsonIsLenientWhichIsWhyItIsNotUsedForPayloads() throws Exception {
        // The reason Json exists: this is what the platform's parser would let through.
        org.json.JSONObject lenient = new org.json.JSONObject("{id:'x'; to=>'+254700000001' /* c */}");
        assertEquals("x", lenient.getString("id"));
        refused("{id:'x'; to=>'+254700000001' /* c */}");
    }

    @Test
    public void aRepeatedKeyKeepsItsFirstPlaceAndItsLastValue() throws Exception {
        Map<String, Object> value = Json.asObject(parse("{\"a\":1,\"b\":2,\"a\":3}"));
        assertEquals(3.0, value.get("a"));
        assertEquals(Arrays.asList("a", "b"), Arrays.asList(value.keySet().toArray()));
    }

    @Test
    public void numbersAreDoublesAsInJavaScript() throws Exception {
        assertEquals(Double.POSITIVE_INFINITY, parse("1e400"));
        assertEquals(1.0, parse("1.0000000000000001"));
        assertEquals(-0.0, parse("-0"));
        assertTrue(Json.isInteger(parse("7.0")));
        assertTrue(Json.isInteger(parse("-0")));
        assertFalse(Json.isInteger(parse("1.5")));
        assertFalse(Json.isInteger(parse("1e400")));
        assertFalse(Json.isInteger("1"));
    }

    @Test
    public void readsEscapesAndLoneSurrogates() throws Exception {
        assertEquals("\"\\/\b\f\n\r\t\u00e9\ud83d\ude00\ud800", parse("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00E9\\ud83d\\ude00\\ud800\""));
        assertEquals("\u2028 and \u007f are fine raw", parse("\"\u2028 and \u007f are fine raw\""));
    }

    @Test
    public void writesLikeJsonStringify() {
        Map<String, Object> value = new LinkedHashMap<>();
        value.put("s", "q\"b\\/\n\u0001\u007f\u2028é😀\ud800");
        value.put("i", 42);
        value.put("l", 1893456000000L);
        value.put("d", 0.5);
        value.put("n", Json.NULL);
        value.put("a", Arrays.asList(true, false));
        assertEquals("{\"s\":\"q\\\"b\\\\/\\n\\u0001\u007f\u2028é😀\\ud800\",\"i\":42,\"l\":1893456000000,\"d\":0.5,\"n\":null,\"a\":[true,false]}",
                Json.stringify(value));
    }

    @Test
    public void writesNumbersAsJavaScriptPrintsThem() {
        Object[][] cases = {
            {1.0, "1"}, {-0.0, "0"}, {0.1, "0.1"}, {-2.5, "-2.5"}, {1e21, "1e+21"}, {1e20, "100000000000000000000"},
            {1.5e-7, "1.5e-7"}, {0.000001, "0.000001"}, {123456.789, "123456.789"}, {Double.NaN, "null"},
            {Double.POSITIVE_INFINITY, "null"}, {2.5e300, "2.5e+300"},
        };
        for (Object[] c : cases) assertEquals(String.valueOf(c[0]), c[1], Json.number((Double) c[0]));
    }

    @Test
    public void roundTrips() throws Exception {
        String text = "{\"id\":\"j-1\",\"list\":[1,2.5,\"x\",null,{\"deep\":[[]]}],\"ok\":true}";
        assertEquals(text, Json.stringify(parse(text)));
        List<?> list = (List<?>) parse("[]");
        assertTrue(list.isEmpty());
    }
}
