package org.otpgate.core;

import java.util.BitSet;

/**
 * One job's SMS parts on their way: Android reports each part's "sent" and
 * "delivered" on its own. The job is sent when every part was sent, failed at
 * the first part that failed, delivered when every part was delivered.
 */
final class MultipartProgress {
    enum Verdict { NONE, SENT, FAILED }

    final int parts;
    final long expiresAt;
    private final BitSet sent = new BitSet();
    private final BitSet delivered = new BitSet();
    private Verdict verdict = Verdict.NONE;
    private boolean deliveryFinished;

    MultipartProgress(int parts, long expiresAt) {
        this.parts = Math.max(1, parts);
        this.expiresAt = expiresAt;
    }

    /** The job's verdict changes at most once; later reports return NONE. */
    Verdict onSent(int part, boolean ok) {
        if (verdict != Verdict.NONE || !inRange(part)) return Verdict.NONE;
        if (!ok) return verdict = Verdict.FAILED;
        sent.set(part);
        if (sent.cardinality() == parts) return verdict = Verdict.SENT;
        return Verdict.NONE;
    }

    /** True once, when the last part is reported delivered. */
    boolean onDelivered(int part) {
        if (deliveryFinished || !inRange(part)) return false;
        delivered.set(part);
        if (delivered.cardinality() < parts) return false;
        deliveryFinished = true;
        return true;
    }

    /** True once, at the first part that will never be delivered. */
    boolean onDeliveryFailed() {
        if (deliveryFinished) return false;
        deliveryFinished = true;
        return true;
    }

    boolean isDone() {
        return verdict == Verdict.FAILED || deliveryFinished;
    }

    private boolean inRange(int part) {
        return part >= 0 && part < parts;
    }
}
