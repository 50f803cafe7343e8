package org.otpgate.core;

import java.util.Set;

/**
 * Whether a job may be sent: the decisions of job-rules.ts (decideOnArrival,
 * checkBeforeSend), with the clock passed in.
 */
public final class JobRules {
    /** {@code error} codes of failed acks for jobs the phone refused without sending. */
    public static final String CANCELLED = "CANCELLED";
    public static final String EXPIRED = "EXPIRED";
    public static final String SIM_NOT_AVAILABLE = "SIM_NOT_AVAILABLE";
    /** The handled id could not be written down first, so sending could break "never twice". */
    public static final String STATE_NOT_SAVED = "STATE_NOT_SAVED";
    /**
     * The phone was stopped (the user's Stop, the service's end) before the job reached the radio: it is never sent,
     * so the gateway may fail over at once rather than after its sent timeout.
     */
    public static final String STOPPED = "STOPPED";

    private JobRules() {}

    public interface Memory {
        boolean isHandled(String id);

        boolean isCancelled(String id);
    }

    public enum Action { SEND, DUPLICATE, REFUSE }

    public static final class Decision {
        public final Action action;
        /** The refusal code for REFUSE, else null. */
        public final String error;

        private Decision(Action action, String error) {
            this.action = action;
            this.error = error;
        }

        static final Decision SEND = new Decision(Action.SEND, null);
        static final Decision DUPLICATE = new Decision(Action.DUPLICATE, null);

        static Decision refuse(String error) {
            return new Decision(Action.REFUSE, error);
        }
    }

    /**
     * A job has just arrived. The repeat check comes first: QoS 1 redelivers,
     * and a repeat must never be sent nor produce a second, contradicting verdict.
     *
     * @param simSlots the SIM slots this phone can send from now
     */
    public static Decision onArrival(SmsJob job, Memory memory, long now, Set<Integer> simSlots) {
        if (memory.isHandled(job.id)) return Decision.DUPLICATE;
        String problem = beforeSend(job, memory, now);
        if (problem != null) return Decision.refuse(problem);
        if (job.sim != null && !simSlots.contains(job.sim)) return Decision.refuse(SIM_NOT_AVAILABLE);
        return Decision.SEND;
    }

    /**
     * Asked again at the moment of sending: a job can wait (the per-minute
     * limit) long enough to expire or be cancelled. "Never after expiresAt"
     * includes the instant itself. Null when it may go.
     */
    public static String beforeSend(SmsJob job, Memory memory, long now) {
        if (memory.isCancelled(job.id)) return CANCELLED;
        if (now >= job.expiresAt) return EXPIRED;
        return null;
    }
}
