package org.otpgate.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.io.UnsupportedEncodingException;
import java.net.URLEncoder;
import org.junit.Test;

/** The confirmation the provisioning screen shows before a link or a scan is applied. */
public class ProvisioningReviewTest {
    private static final String FP = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";
    private static final String OTHER_FP = "11:22:33:44:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";

    private static Provisioning parse(String mqtt, String id, String token, String fp) throws Exception {
        return Provisioning.parse("otpgate://provision?v=1&mqtt=" + enc(mqtt) + "&id=" + id + "&token=" + enc(token) + "&fp=" + enc(fp));
    }

    private static String enc(String value) throws UnsupportedEncodingException {
        return URLEncoder.encode(value, "UTF-8");
    }

    @Test
    public void aFirstProvisioningShowsHostDeviceAndFingerprintWithoutAWarning() throws Exception {
        Provisioning proposed = parse("mqtts://gw.example.com:8883", "dev_1", "secret-token", FP);
        ProvisioningReview review = ProvisioningReview.of(null, proposed);
        assertEquals(ProvisioningReview.Kind.FIRST, review.kind);
        assertFalse(review.needsWarning());
        String text = review.text(null);
        assertTrue(text, text.contains("gw.example.com:8883"));
        assertTrue(text, text.contains("dev_1"));
        assertTrue(text, text.contains(FP));
        assertFalse("the token is never shown", text.contains("secret-token"));
        assertFalse(text.contains("WARNING"));
    }

    @Test
    public void theSameProvisioningAgainIsNoReplacement() throws Exception {
        Provisioning current = parse("mqtts://gw.example.com:8883", "dev_1", "t", FP);
        ProvisioningReview review = ProvisioningReview.of(current, parse("mqtts://gw.example.com:8883", "dev_1", "t", FP));
        assertEquals(ProvisioningReview.Kind.SAME, review.kind);
        assertFalse(review.needsWarning());
        assertTrue(review.changes.isEmpty());
    }

    @Test
    public void anotherGatewayWarnsAndNamesEveryChange() throws Exception {
        Provisioning current = parse("mqtts://gw.example.com:8883", "dev_1", "t", FP);
        Provisioning proposed = parse("mqtts://evil.example.net:8883", "dev_9", "u", OTHER_FP);
        ProvisioningReview review = ProvisioningReview.of(current, proposed);
        assertEquals(ProvisioningReview.Kind.REPLACES, review.kind);
        assertTrue(review.needsWarning());
        assertEquals(4, review.changes.size());
        String text = review.text(current);
        assertTrue(text, text.contains("WARNING"));
        assertTrue(text, text.contains("gw.example.com:8883 → evil.example.net:8883"));
        assertTrue(text, text.contains("dev_1 → dev_9"));
        assertTrue(text, text.contains("different certificate authority"));
    }

    @Test
    public void onlyANewTokenStillWarns() throws Exception {
        Provisioning current = parse("mqtts://gw.example.com:8883", "dev_1", "old", FP);
        ProvisioningReview review = ProvisioningReview.of(current, parse("mqtts://gw.example.com:8883", "dev_1", "new", FP));
        assertTrue(review.needsWarning());
        assertEquals(1, review.changes.size());
        assertFalse(review.text(current).contains("new"));
    }

    @Test
    public void aChangedCaPinAloneWarns() throws Exception {
        Provisioning current = parse("mqtts://gw.example.com:8883", "dev_1", "t", FP);
        ProvisioningReview review = ProvisioningReview.of(current, parse("mqtts://gw.example.com:8883", "dev_1", "t", OTHER_FP));
        assertTrue(review.needsWarning());
        assertTrue(review.changes.get(0), review.changes.get(0).startsWith("Trusted CA"));
    }
}
