package org.otpgate.core;

/** What arrived on {@code sms/out/<id>}: a job to send, or a cancel for a job id. */
public final class OutboundMessage {
    public enum Kind { JOB, CANCEL }

    public final Kind kind;
    public final String id;
    /** Set for JOB, null for CANCEL. */
    public final SmsJob job;

    private OutboundMessage(Kind kind, String id, SmsJob job) {
        this.kind = kind;
        this.id = id;
        this.job = job;
    }

    public static OutboundMessage job(SmsJob job) {
        return new OutboundMessage(Kind.JOB, job.id, job);
    }

    public static OutboundMessage cancel(String id) {
        return new OutboundMessage(Kind.CANCEL, id, null);
    }

    @Override
    public String toString() {
        return kind == Kind.JOB ? job.toString() : "Cancel{" + id + "}";
    }
}
