package org.otpgate.core;

/** A job from {@code sms/out/<id>}, checked. */
public final class SmsJob {
    public final String id;
    /** E.164, e.g. +254700000001. */
    public final String to;
    public final String body;
    /** Epoch ms; the job must not be sent at or after this instant. */
    public final long expiresAt;
    /** SIM slot 0..7, or null for the phone's default SMS SIM. */
    public final Integer sim;

    public SmsJob(String id, String to, String body, long expiresAt, Integer sim) {
        this.id = id;
        this.to = to;
        this.body = body;
        this.expiresAt = expiresAt;
        this.sim = sim;
    }

    @Override
    public String toString() {
        // Never the number or the body: toString ends up in logs.
        return "SmsJob{" + id + ", to " + Redact.phoneNumber(to) + ", " + body.length() + " chars}";
    }
}
