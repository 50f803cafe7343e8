package org.otpgate.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.UnsupportedEncodingException;
import java.net.URLEncoder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.Test;

/** The cases of test/phone-simulator/provisioning.test.ts, against the Java parser. */
public class ProvisioningTest {
    private static final String FP = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";

    /** What broker/provisioning.ts's buildProvisioningUri returned for these fields. */
    private static final String BUILT_BY_THE_SERVER = "otpgate://provision?v=1&mqtt=mqtts%3A%2F%2Fgateway.example.com%3A8883&id=dev_7f3a"
            + "&token=s3cr3t%26token%3Dwith%3Fodd%2Fchars+%C3%A9%2B&fp=AB%3ACD%3AEF%3A01%3A23%3A45%3A67%3A89%3AAB%3ACD%3AEF%3A01%3A23%3A45"
            + "%3A67%3A89%3AAB%3ACD%3AEF%3A01%3A23%3A45%3A67%3A89%3AAB%3ACD%3AEF%3A01%3A23%3A45%3A67%3A89"
            + "&ca=https%3A%2F%2Fgateway.example.com%2Fv1%2Fca.pem%3Fx%3D1%26y%3D2";

    private static String uri(String... pairs) {
        StringBuilder out = new StringBuilder("otpgate://provision?");
        try {
            for (int i = 0; i < pairs.length; i += 2) {
                if (i > 0) out.append('&');
                out.append(pairs[i]).append('=').append(URLEncoder.encode(pairs[i + 1], "UTF-8"));
            }
        } catch (UnsupportedEncodingException e) {
            throw new AssertionError(e);
        }
        return out.toString();
    }

    /** The base parameters with one replaced (or added). */
    private static String with(String name, String value) {
        String[] base = {"v", "1", "mqtt", "mqtts://gateway.example.com:8883", "id", "dev_7f3a", "token", "tok", "fp", FP};
        String[] pairs = base;
        boolean replaced = false;
        for (int i = 0; i < base.length; i += 2) {
            if (base[i].equals(name)) {
                pairs[i + 1] = value;
                replaced = true;
            }
        }
        if (!replaced) {
            pairs = new String[base.length + 2];
            System.arraycopy(base, 0, pairs, 0, base.length);
            pairs[base.length] = name;
            pairs[base.length + 1] = value;
        }
        return uri(pairs);
    }

    private static void refused(String uri, String messagePart) {
        try {
            Provisioning.parse(uri);
            fail("accepted " + uri);
        } catch (Provisioning.InvalidException e) {
            assertTrue(e.getMessage() + " should say " + messagePart, e.getMessage().contains(messagePart));
        }
    }

    /** What buildProvisioningUri returned for three brokers (mqttUrls), the rest as in {@link #with}. */
    private static final String CLUSTER_BUILT_BY_THE_SERVER = "otpgate://provision?v=1&mqtt=mqtts%3A%2F%2Fgw-1.example.com%3A8883"
            + "&mqtt=mqtts%3A%2F%2Fgw-2.example.com%3A8883&mqtt=mqtts%3A%2F%2F%5Bfd00%3A%3A3%5D%3A9883&id=dev_7f3a&token=tok"
            + "&fp=AB%3ACD%3AEF%3A01%3A23%3A45%3A67%3A89%3AAB%3ACD%3AEF%3A01%3A23%3A45%3A67%3A89%3AAB%3ACD%3AEF%3A01%3A23%3A45"
            + "%3A67%3A89%3AAB%3ACD%3AEF%3A01%3A23%3A45%3A67%3A89";

    @Test
    public void readsAUriTheServerBuilt() throws Exception {
        Provisioning p = Provisioning.parse(BUILT_BY_THE_SERVER);
        assertEquals(Arrays.asList("mqtts://gateway.example.com:8883"), p.mqttUrls);
        assertEquals("mqtts://gateway.example.com:8883", p.mqttUrl);
        assertEquals("dev_7f3a", p.deviceId);
        assertEquals("s3cr3t&token=with?odd/chars é+", p.token);
        assertEquals(FP, p.caFingerprint);
        assertEquals("https://gateway.example.com/v1/ca.pem?x=1&y=2", p.caUrl);
        assertEquals("ssl://gateway.example.com:8883", p.broker().pahoUri());
        assertEquals("gateway.example.com", p.broker().certificateName());
    }

    @Test
    public void readsSeveralBrokersInTheOrderToTryThem() throws Exception {
        Provisioning p = Provisioning.parse(CLUSTER_BUILT_BY_THE_SERVER);
        assertEquals(Arrays.asList("mqtts://gw-1.example.com:8883", "mqtts://gw-2.example.com:8883", "mqtts://[fd00::3]:9883"), p.mqttUrls);
        assertEquals("mqtts://gw-1.example.com:8883", p.mqttUrl);
        assertEquals("ssl://gw-1.example.com:8883", p.broker().pahoUri());
        List<String> paho = new ArrayList<>();
        List<String> names = new ArrayList<>();
        for (BrokerAddress broker : p.brokers()) {
            paho.add(broker.pahoUri());
            names.add(broker.certificateName());
        }
        assertEquals(Arrays.asList("ssl://gw-1.example.com:8883", "ssl://gw-2.example.com:8883", "ssl://[fd00::3]:9883"), paho);
        assertEquals(Arrays.asList("gw-1.example.com", "gw-2.example.com", "fd00::3"), names);
        try {
            p.mqttUrls.add("mqtts://x");
            fail("the list can be changed");
        } catch (UnsupportedOperationException expected) {
            // read-only
        }
        assertFalse(p.toString().contains("tok"));
        assertTrue(p.toString().contains("gw-2.example.com"));
    }

    @Test
    public void readsHandWrittenBrokerListsAnywhereInTheQuery() throws Exception {
        Provisioning p = Provisioning.parse("otpgate://provision?mqtt=mqtts://a:8883&v=1&id=d1&mqtt=mqtts://b&token=t&fp=" + FP + "&mqtt=mqtts://a:8883");
        assertEquals(Arrays.asList("mqtts://a:8883", "mqtts://b", "mqtts://a:8883"), p.mqttUrls);
        assertEquals(8883, p.brokers().get(1).port);
    }

    @Test
    public void takesUpToEightBrokers() throws Exception {
        StringBuilder eight = new StringBuilder(with("v", "1"));
        for (int i = 2; i <= 8; i++) eight.append("&mqtt=mqtts://gw-").append(i);
        assertEquals(8, Provisioning.parse(eight.toString()).mqttUrls.size());
        refused(eight + "&mqtt=mqtts://gw-9", "at most 8 brokers");
    }

    @Test
    public void refusesABadBrokerAnywhereInTheList() {
        refused(with("v", "1") + "&mqtt=", "mqtt number 2 is empty");
        refused(with("v", "1") + "&mqtt=mqtt://h:1883", "mqtts://");
        refused(with("v", "1") + "&mqtt=mqtts://u:p@h", "credentials");
        refused(with("mqtt", "") + "&mqtt=", "parameter mqtt is missing");
        refused(uri("v", "1", "id", "d", "token", "t", "fp", FP), "parameter mqtt is missing");
    }

    @Test
    public void leavesCaOutWhenThereIsNone() throws Exception {
        assertNull(Provisioning.parse(with("v", "1")).caUrl);
        assertNull(Provisioning.parse(with("ca", "")).caUrl);
    }

    @Test
    public void normalizesTheFingerprintSpelling() throws Exception {
        assertEquals(FP, Provisioning.parse(with("fp", FP.replace(":", "").toLowerCase())).caFingerprint);
    }

    @Test
    public void acceptsAHandWrittenUriWithRawColonsSpacesAroundAndUnknownParameters() throws Exception {
        Provisioning p = Provisioning.parse("  otpgate://provision?v=1&mqtt=mqtts://h:8883&id=d1&token=t&fp=" + FP + "&future=1\n");
        assertEquals("mqtts://h:8883", p.mqttUrl);
        assertEquals("d1", p.deviceId);
        assertEquals("t", p.token);
        assertNull(p.caUrl);
        assertTrue(Provisioning.parse("otpgate://provision/?v=1&mqtt=mqtts://h&id=d1&token=t&fp=" + FP + "#x").broker().port == 8883);
    }

    @Test
    public void handlesIpv6BrokersAndDefaultPorts() throws Exception {
        BrokerAddress v6 = Provisioning.parse(with("mqtt", "mqtts://[::1]:9883")).broker();
        assertEquals("ssl://[::1]:9883", v6.pahoUri());
        assertEquals("::1", v6.certificateName());
        assertEquals(8883, Provisioning.parse(with("mqtt", "mqtts://broker.lan")).broker().port);
    }

    @Test
    public void refusesWhatTheServerRefuses() {
        refused("hello", "not a URI");
        refused("https://provision?v=1", "not an otpgate provisioning URI");
        refused("otpgate://other?v=1", "not an otpgate provisioning URI");
        refused("otpgate://PROVISION?v=1", "not an otpgate provisioning URI");
        refused("otpgate://provision/x?v=1", "not an otpgate provisioning URI");
        refused("otpgate:provision?v=1", "not an otpgate provisioning URI");
        refused(with("v", ""), "parameter v is missing");
        refused(with("v", "2"), "unsupported provisioning version v=2");
        refused(with("mqtt", ""), "parameter mqtt is missing");
        refused(with("mqtt", "mqtt://h:1883"), "mqtts://");
        refused(with("mqtt", "ssl://h:8883"), "mqtts://");
        refused(with("mqtt", "::"), "mqtt is not a URL");
        refused(with("mqtt", "mqtts://h:99999"), "mqtt is not a URL");
        refused(with("mqtt", "mqtts://:8883"), "no host");
        refused(with("mqtt", "mqtts://h h"), "mqtt is not a URL");
        refused(with("mqtt", "mqtts:h"), "no host");
        refused(with("mqtt", "mqtts://u:p@h:8883"), "credentials");
        refused(with("mqtt", "mqtts://:p@h:8883"), "credentials");
        refused(with("id", ""), "parameter id is missing");
        refused(with("id", "a/b"), "id: a device id");
        refused(with("id", "a+b"), "id: a device id");
        refused(with("id", new String(new char[65]).replace('\0', 'x')), "id: a device id");
        refused(with("token", ""), "parameter token is missing");
        refused(with("token", new String(new char[513]).replace('\0', 't')), "token must be 1 to 512");
        refused(with("fp", ""), "parameter fp is missing");
        refused(with("fp", "AB:CD"), "fp must be a SHA-256 fingerprint");
        refused(with("ca", "file:///etc/ca.pem"), "ca must be an http or https URL");
        refused(with("ca", "ftp://h/ca.pem"), "ca must be an http or https URL");
        refused(with("ca", "http://1.2.3.256/ca.pem"), "ca is not a URL");
        refused(with("ca", "not a url"), "ca is not a URL");
    }

    @Test
    public void readsWithJavaNetUriAndRefusesSpellingsOnlyABrowserTakes() throws Exception {
        assertEquals("MQTTS://H:1", Provisioning.parse(with("mqtt", "MQTTS://H:1")).mqttUrl);
        assertEquals(512, Provisioning.parse(with("token", new String(new char[512]).replace('\0', 't'))).token.length());
        // java.net.URI is narrower than the WHATWG parser of broker/provisioning.ts; the server never builds these.
        refused(with("mqtt", "mqtts://@h"), "credentials");
        refused(with("ca", "http:host/ca.pem"), "ca is not a URL");
        refused(uri("v", "1", "mqtt", "mqtts://h", "id", "d", "fp", FP).replace("?", "?token=t%zz&"), "not a URI");
        assertEquals("mqtts://[::1]:8883", Provisioning.parse("otpgate://provision?v=1&mqtt=mqtts://[::1]:8883&id=d&token=t&fp=" + FP).mqttUrl);
        refused("otpgate://provision?v=1&mqtt=mqtts://h&id=d&token=a b&fp=" + FP, "not a URI");
    }

    @Test
    public void refusesARepeatedParameterOtherThanMqttRatherThanGuessing() {
        refused(with("v", "1") + "&id=other", "parameter id appears 2 times");
        refused(with("v", "1") + "&v=1", "parameter v appears 2 times");
        refused(with("v", "1") + "&token=other", "parameter token appears 2 times");
        refused(with("v", "1") + "&fp=" + FP, "parameter fp appears 2 times");
        refused(with("ca", "https://h/ca.pem") + "&ca=https://h/ca.pem", "parameter ca appears 2 times");
    }

    @Test
    public void neverRepeatsTheTokenInAnErrorOrInToString() throws Exception {
        String secret = "very-secret-token";
        try {
            Provisioning.parse(with("token", secret).replace("fp=", "fp=nope"));
            fail("accepted a bad fingerprint");
        } catch (Provisioning.InvalidException e) {
            assertFalse(e.getMessage().contains(secret));
        }
        assertFalse(Provisioning.parse(with("token", secret)).toString().contains(secret));
    }
}
