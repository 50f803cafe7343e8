package org.otpgate.core;

/** The broker of a provisioning URI, in the forms Paho and the certificate check need. */
public final class BrokerAddress {
    /** DESIGN.md's MQTT_TLS_PORT default. */
    public static final int DEFAULT_TLS_PORT = 8883;

    /** Host name or IP as dialled; an IPv6 address keeps its brackets. */
    public final String host;
    public final int port;

    public BrokerAddress(String host, int port) {
        this.host = host;
        this.port = port;
    }

    /** Paho names TLS "ssl://". */
    public String pahoUri() {
        return "ssl://" + host + ":" + port;
    }

    /** The name the server certificate must carry: the host without IPv6 brackets. */
    public String certificateName() {
        return host.startsWith("[") && host.endsWith("]") ? host.substring(1, host.length() - 1) : host;
    }

    @Override
    public String toString() {
        return host + ":" + port;
    }
}
