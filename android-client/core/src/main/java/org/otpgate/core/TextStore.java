package org.otpgate.core;

import java.io.IOException;

/**
 * Where the phone keeps a piece of state that must survive a restart (the
 * ledger, the ack outbox). {@link #write} returns only once the text is durable:
 * the phone writes a job's id down BEFORE it may send the SMS.
 */
public interface TextStore {
    /** Null when nothing was ever written. */
    String read() throws IOException;

    void write(String text) throws IOException;
}
