package org.otpgate.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * What the provisioning screen shows before anything is saved, and whether it
 * must warn. A provisioning URI can reach the app from any web page (the
 * otpgate://provision link), so nothing is applied until the user has seen
 * where the phone would connect, as which device, trusting which CA, and has
 * tapped to confirm; replacing a working setup says what changes.
 */
public final class ProvisioningReview {
    public enum Kind {
        /** The phone has no provisioning yet. */
        FIRST,
        /** Exactly what the phone already has (applying again re-fetches the CA). */
        SAME,
        /** The phone would leave its current gateway or identity: warn. */
        REPLACES
    }

    public final Kind kind;
    /** "label: value" lines describing the proposed provisioning; never the token. */
    public final List<String> summary;
    /** What differs from the current provisioning; empty unless {@link Kind#REPLACES}. */
    public final List<String> changes;

    private ProvisioningReview(Kind kind, List<String> summary, List<String> changes) {
        this.kind = kind;
        this.summary = Collections.unmodifiableList(summary);
        this.changes = Collections.unmodifiableList(changes);
    }

    /** @param current what the phone uses now, or null */
    public static ProvisioningReview of(Provisioning current, Provisioning proposed) {
        List<String> summary = new ArrayList<>();
        for (BrokerAddress broker : proposed.brokers()) summary.add("Gateway: " + broker);
        summary.add("Device id: " + proposed.deviceId);
        summary.add("CA SHA-256: " + proposed.caFingerprint);
        if (proposed.caUrl != null) summary.add("CA download: " + proposed.caUrl);
        if (current == null) return new ProvisioningReview(Kind.FIRST, summary, new ArrayList<String>());

        List<String> changes = new ArrayList<>();
        if (!current.mqttUrls.equals(proposed.mqttUrls)) {
            changes.add("Gateway: " + brokers(current) + " → " + brokers(proposed));
        }
        if (!current.deviceId.equals(proposed.deviceId)) {
            changes.add("Device id: " + current.deviceId + " → " + proposed.deviceId);
        }
        if (!current.caFingerprint.equals(proposed.caFingerprint)) {
            changes.add("Trusted CA: a different certificate authority (" + shortFingerprint(current.caFingerprint)
                    + "… → " + shortFingerprint(proposed.caFingerprint) + "…)");
        }
        if (!current.token.equals(proposed.token)) changes.add("Token: a different one");
        if (!equal(current.caUrl, proposed.caUrl)) {
            changes.add("CA download: " + orNone(current.caUrl) + " → " + orNone(proposed.caUrl));
        }
        return new ProvisioningReview(changes.isEmpty() ? Kind.SAME : Kind.REPLACES, summary, changes);
    }

    public boolean needsWarning() {
        return kind == Kind.REPLACES;
    }

    /** The whole text of the screen: the summary, then the warning and its changes. */
    public String text(Provisioning current) {
        StringBuilder out = new StringBuilder();
        for (String line : summary) out.append(line).append('\n');
        if (kind == Kind.SAME) {
            out.append("\nThis phone already uses exactly this provisioning.\n");
        } else if (kind == Kind.REPLACES) {
            out.append("\nWARNING: this phone is set up as ").append(current.deviceId).append(" for ")
                    .append(current.broker()).append(". Applying replaces that setup:\n");
            for (String change : changes) out.append("• ").append(change).append('\n');
            out.append("Only continue if you created this device on your own gateway.\n");
        }
        return out.toString();
    }

    private static String brokers(Provisioning provisioning) {
        StringBuilder out = new StringBuilder();
        for (BrokerAddress broker : provisioning.brokers()) {
            if (out.length() > 0) out.append(", ");
            out.append(broker);
        }
        return out.toString();
    }

    /** The first four bytes, enough to tell two CAs apart on screen. */
    private static String shortFingerprint(String fingerprint) {
        return fingerprint.length() > 11 ? fingerprint.substring(0, 11) : fingerprint;
    }

    private static boolean equal(String a, String b) {
        return a == null ? b == null : a.equals(b);
    }

    private static String orNone(String value) {
        return value == null ? "none" : value;
    }
}
