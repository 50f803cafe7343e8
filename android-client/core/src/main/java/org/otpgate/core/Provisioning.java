package org.otpgate.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.regex.Pattern;

/**
 * The provisioning URI the phone scans as a QR code, with the rules of
 * broker/provisioning.ts:
 *
 * <pre>otpgate://provision?v=1&amp;mqtt=&lt;mqtts URL&gt;[&amp;mqtt=&lt;mqtts URL&gt;…]&amp;id=&lt;device id&gt;&amp;token=&lt;token&gt;&amp;fp=&lt;CA SHA-256&gt;[&amp;ca=&lt;http(s) URL of the CA PEM&gt;]</pre>
 *
 * {@code mqtt} may be repeated, up to {@link #MAX_MQTT_URLS} times: the
 * brokers of a cluster in the order the phone tries them, moving to the next
 * when one is unreachable ({@link #mqttUrls}, {@link #brokers}). Unknown
 * parameters are ignored so later versions can add some; another {@code v} is
 * refused; any other repeated parameter is refused rather than guessed. Error
 * messages never repeat the token.
 */
public final class Provisioning {
    public static final String VERSION = "1";
    public static final int MAX_TOKEN_CHARS = 512;
    /** broker/provisioning.ts MAX_MQTT_URLS: a cluster's worth, and the QR code stays scannable. */
    public static final int MAX_MQTT_URLS = 8;
    /** broker/topics.ts DEVICE_ID_PATTERN: one topic level of plain characters. */
    private static final Pattern DEVICE_ID = Pattern.compile("[A-Za-z0-9_-]{1,64}");

    /** Every broker's mqtts:// URL, in the order to try them; at least one, unmodifiable. */
    public final List<String> mqttUrls;
    /** The first of {@link #mqttUrls}. */
    public final String mqttUrl;
    public final String deviceId;
    public final String token;
    /** "AB:CD:…", normalized. */
    public final String caFingerprint;
    /** Where the CA PEM can be fetched, or null. */
    public final String caUrl;

    private Provisioning(List<String> mqttUrls, String deviceId, String token, String caFingerprint, String caUrl) {
        this.mqttUrls = Collections.unmodifiableList(new ArrayList<>(mqttUrls));
        this.mqttUrl = mqttUrls.get(0);
        this.deviceId = deviceId;
        this.token = token;
        this.caFingerprint = caFingerprint;
        this.caUrl = caUrl;
    }

    public static final class InvalidException extends Exception {
        InvalidException(String message) {
            super(message);
        }
    }

    public static Provisioning parse(String uri) throws InvalidException {
        WebUrl url;
        try {
            url = WebUrl.parse(JsText.trim(uri));
        } catch (WebUrl.Failure e) {
            throw new InvalidException("not a URI; expected otpgate://provision?v=1&…");
        }
        if (!url.scheme.equals("otpgate") || !url.host.equals("provision") || !(url.path.isEmpty() || url.path.equals("/"))) {
            throw new InvalidException("not an otpgate provisioning URI; expected otpgate://provision?v=1&…");
        }
        List<String[]> params = FormUrlEncoded.parse(url.query == null ? "" : url.query);

        String version = required(params, "v");
        if (!version.equals(VERSION)) {
            throw new InvalidException("unsupported provisioning version v=" + version + "; this phone understands v=" + VERSION);
        }
        List<String> mqtt = all(params, "mqtt");
        boolean noBroker = true;
        for (String value : mqtt) noBroker &= value.isEmpty();
        if (noBroker) throw new InvalidException("parameter mqtt is missing");
        String id = required(params, "id");
        String token = required(params, "token");
        String fp = required(params, "fp");
        String ca = single(params, "ca");
        if (ca != null && ca.isEmpty()) ca = null;

        if (mqtt.size() > MAX_MQTT_URLS) {
            throw new InvalidException("mqtt appears " + mqtt.size() + " times; at most " + MAX_MQTT_URLS + " brokers");
        }
        for (int i = 0; i < mqtt.size(); i++) {
            if (mqtt.get(i).isEmpty()) throw new InvalidException("mqtt number " + (i + 1) + " is empty");
            checkMqttUrl(mqtt.get(i));
        }
        if (!DEVICE_ID.matcher(id).matches()) throw new InvalidException("id: a device id is 1 to 64 letters, digits, _ or -");
        if (token.length() > MAX_TOKEN_CHARS) throw new InvalidException("token must be 1 to " + MAX_TOKEN_CHARS + " characters");
        String fingerprint = Fingerprints.normalize(fp);
        if (fingerprint == null) throw new InvalidException("fp must be a SHA-256 fingerprint: 32 hex bytes, e.g. AB:CD:…");
        if (ca != null) checkCaUrl(ca);
        return new Provisioning(mqtt, id, token, fingerprint, ca);
    }

    /** Every value of {@code name}, in order. */
    private static List<String> all(List<String[]> params, String name) {
        List<String> values = new ArrayList<>();
        for (String[] pair : params) {
            if (pair[0].equals(name)) values.add(pair[1]);
        }
        return values;
    }

    private static String single(List<String[]> params, String name) throws InvalidException {
        List<String> values = all(params, name);
        if (values.size() > 1) throw new InvalidException("parameter " + name + " appears " + values.size() + " times");
        return values.isEmpty() ? null : values.get(0);
    }

    private static String required(List<String[]> params, String name) throws InvalidException {
        String value = single(params, name);
        if (value == null || value.isEmpty()) throw new InvalidException("parameter " + name + " is missing");
        return value;
    }

    private static void checkMqttUrl(String value) throws InvalidException {
        WebUrl url;
        try {
            url = WebUrl.parse(value);
        } catch (WebUrl.Failure e) {
            throw new InvalidException("mqtt is not a URL; expected mqtts://host:port");
        }
        if (!url.scheme.equals("mqtts")) {
            throw new InvalidException("mqtt must be an mqtts:// URL (phones reach the broker over TLS), got " + url.scheme + "://");
        }
        if (url.host.isEmpty()) throw new InvalidException("mqtt URL has no host");
        if (!url.username.isEmpty() || !url.password.isEmpty()) {
            throw new InvalidException("mqtt URL must not carry credentials; they go in id and token");
        }
    }

    private static void checkCaUrl(String value) throws InvalidException {
        WebUrl url;
        try {
            url = WebUrl.parse(value);
        } catch (WebUrl.Failure e) {
            throw new InvalidException("ca is not a URL; expected an http(s) URL of the CA certificate");
        }
        if (!url.scheme.equals("http") && !url.scheme.equals("https")) {
            throw new InvalidException("ca must be an http or https URL, got " + url.scheme + "://");
        }
    }

    /** The first broker: where Paho connects and which name the broker's certificate must carry. */
    public BrokerAddress broker() {
        return address(mqttUrl);
    }

    /** Every broker, in the order to try them: the next when one is unreachable. */
    public List<BrokerAddress> brokers() {
        List<BrokerAddress> out = new ArrayList<>();
        for (String url : mqttUrls) out.add(address(url));
        return Collections.unmodifiableList(out);
    }

    private static BrokerAddress address(String mqttUrl) {
        try {
            WebUrl url = WebUrl.parse(mqttUrl);
            return new BrokerAddress(url.host, url.port.isEmpty() ? BrokerAddress.DEFAULT_TLS_PORT : Integer.parseInt(url.port));
        } catch (WebUrl.Failure e) {
            throw new IllegalStateException("checked when parsed", e);
        }
    }

    @Override
    public String toString() {
        // Never the token.
        return "Provisioning{" + deviceId + " at " + String.join(", ", mqttUrls) + ", fp " + caFingerprint + "}";
    }
}
