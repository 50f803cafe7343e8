package org.otpgate.core;

import java.io.UnsupportedEncodingException;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.URLDecoder;
import java.util.ArrayList;
import java.util.Locale;
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
 *
 * URIs are read with {@code java.net.URI} (RFC 2396/3986), which is narrower
 * than the WHATWG parser broker/provisioning.ts uses: a URI the server builds
 * (URLSearchParams encoding) reads the same on both sides, and hand-written
 * oddities that only a browser would take (raw spaces or brackets in the
 * query, a malformed %-escape, credentials spelt "@host") are refused here. A
 * refused URI only means the phone asks for another one.
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
        URI url;
        try {
            url = new URI(uri.trim());
        } catch (URISyntaxException e) {
            throw new InvalidException("not a URI; expected otpgate://provision?v=1&…");
        }
        if (url.getScheme() == null) throw new InvalidException("not a URI; expected otpgate://provision?v=1&…");
        String path = url.getRawPath();
        // The authority is compared as written: otpgate: hosts are opaque, "PROVISION" is another host.
        if (!"otpgate".equalsIgnoreCase(url.getScheme()) || !"provision".equals(url.getRawAuthority())
                || !(path == null || path.isEmpty() || path.equals("/"))) {
            throw new InvalidException("not an otpgate provisioning URI; expected otpgate://provision?v=1&…");
        }
        List<String[]> params = queryParameters(url.getRawQuery());

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

    /**
     * application/x-www-form-urlencoded name/value pairs in order, as URLSearchParams splits
     * them; URLDecoder turns '+' into a space and %XX into UTF-8, and refuses a broken escape.
     */
    private static List<String[]> queryParameters(String rawQuery) throws InvalidException {
        List<String[]> pairs = new ArrayList<>();
        if (rawQuery == null) return pairs;
        for (String sequence : rawQuery.split("&", -1)) {
            if (sequence.isEmpty()) continue;
            int eq = sequence.indexOf('=');
            try {
                pairs.add(new String[] {
                    URLDecoder.decode(eq < 0 ? sequence : sequence.substring(0, eq), "UTF-8"),
                    URLDecoder.decode(eq < 0 ? "" : sequence.substring(eq + 1), "UTF-8"),
                });
            } catch (IllegalArgumentException | UnsupportedEncodingException e) {
                throw new InvalidException("a parameter has a malformed %-escape");
            }
        }
        return pairs;
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
        URI url;
        try {
            url = new URI(value);
        } catch (URISyntaxException e) {
            throw new InvalidException("mqtt is not a URL; expected mqtts://host:port");
        }
        String scheme = url.getScheme() == null ? "" : url.getScheme().toLowerCase(Locale.ROOT);
        if (!scheme.equals("mqtts")) {
            throw new InvalidException("mqtt must be an mqtts:// URL (phones reach the broker over TLS), got " + scheme + "://");
        }
        // No host when the authority is not host[:port] (java.net.URI then calls it registry-based).
        if (url.getHost() == null || url.getHost().isEmpty()) throw new InvalidException("mqtt URL has no host");
        if (url.getRawUserInfo() != null) throw new InvalidException("mqtt URL must not carry credentials; they go in id and token");
        if (url.getPort() > 65535) throw new InvalidException("mqtt is not a URL: its port is over 65535");
    }

    private static void checkCaUrl(String value) throws InvalidException {
        URI url;
        try {
            url = new URI(value);
        } catch (URISyntaxException e) {
            throw new InvalidException("ca is not a URL; expected an http(s) URL of the CA certificate");
        }
        String scheme = url.getScheme() == null ? "" : url.getScheme().toLowerCase(Locale.ROOT);
        if (!scheme.equals("http") && !scheme.equals("https")) {
            throw new InvalidException("ca must be an http or https URL, got " + scheme + "://");
        }
        if (url.getHost() == null || url.getHost().isEmpty()) throw new InvalidException("ca is not a URL with a host; expected an http(s) URL of the CA certificate");
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
        URI url = URI.create(mqttUrl); // checked when parsed
        // getHost keeps an IPv6 address in brackets, as BrokerAddress wants it.
        return new BrokerAddress(url.getHost(), url.getPort() < 0 ? BrokerAddress.DEFAULT_TLS_PORT : url.getPort());
    }

    @Override
    public String toString() {
        // Never the token.
        return "Provisioning{" + deviceId + " at " + String.join(", ", mqttUrls) + ", fp " + caFingerprint + "}";
    }
}
