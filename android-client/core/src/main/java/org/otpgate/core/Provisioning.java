package org.otpgate.core;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * The provisioning URI the phone scans as a QR code, with the rules of
 * broker/provisioning.ts:
 *
 * <pre>otpgate://provision?v=1&amp;mqtt=&lt;mqtts URL&gt;&amp;id=&lt;device id&gt;&amp;token=&lt;token&gt;&amp;fp=&lt;CA SHA-256&gt;[&amp;ca=&lt;http(s) URL of the CA PEM&gt;]</pre>
 *
 * Unknown parameters are ignored so later versions can add some; another
 * {@code v} is refused; a repeated parameter is refused rather than guessed.
 * Error messages never repeat the token.
 */
public final class Provisioning {
    public static final String VERSION = "1";
    public static final int MAX_TOKEN_CHARS = 512;
    /** broker/topics.ts DEVICE_ID_PATTERN: one topic level of plain characters. */
    private static final Pattern DEVICE_ID = Pattern.compile("[A-Za-z0-9_-]{1,64}");

    public final String mqttUrl;
    public final String deviceId;
    public final String token;
    /** "AB:CD:…", normalized. */
    public final String caFingerprint;
    /** Where the CA PEM can be fetched, or null. */
    public final String caUrl;

    private Provisioning(String mqttUrl, String deviceId, String token, String caFingerprint, String caUrl) {
        this.mqttUrl = mqttUrl;
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
        String mqtt = required(params, "mqtt");
        String id = required(params, "id");
        String token = required(params, "token");
        String fp = required(params, "fp");
        String ca = single(params, "ca");
        if (ca != null && ca.isEmpty()) ca = null;

        checkMqttUrl(mqtt);
        if (!DEVICE_ID.matcher(id).matches()) throw new InvalidException("id: a device id is 1 to 64 letters, digits, _ or -");
        if (token.length() > MAX_TOKEN_CHARS) throw new InvalidException("token must be 1 to " + MAX_TOKEN_CHARS + " characters");
        String fingerprint = Fingerprints.normalize(fp);
        if (fingerprint == null) throw new InvalidException("fp must be a SHA-256 fingerprint: 32 hex bytes, e.g. AB:CD:…");
        if (ca != null) checkCaUrl(ca);
        return new Provisioning(mqtt, id, token, fingerprint, ca);
    }

    private static String single(List<String[]> params, String name) throws InvalidException {
        List<String> values = new ArrayList<>();
        for (String[] pair : params) {
            if (pair[0].equals(name)) values.add(pair[1]);
        }
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

    /** Where Paho connects and which name the broker's certificate must carry. */
    public BrokerAddress broker() {
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
        return "Provisioning{" + deviceId + " at " + mqttUrl + ", fp " + caFingerprint + "}";
    }
}
