package org.otpgate.core;

/** The {@code status} of an ack on {@code sms/ack/<id>}; the enum of broker/payloads.ts. */
public enum AckStatus {
    RECEIVED("received"),
    SENT("sent"),
    DELIVERED("delivered"),
    FAILED("failed");

    public final String wire;

    AckStatus(String wire) {
        this.wire = wire;
    }

    /** Null for anything that is not one of the four wire names (case matters). */
    public static AckStatus fromWire(Object value) {
        for (AckStatus status : values()) {
            if (status.wire.equals(value)) return status;
        }
        return null;
    }
}
