package org.otpgate.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.junit.Test;

public class AckOutboxTest {
    static final class MemoryStore implements TextStore {
        String text;
        boolean broken;

        @Override
        public String read() {
            return text;
        }

        @Override
        public void write(String text) throws IOException {
            if (broken) throw new IOException("disk full");
            this.text = text;
        }
    }

    private static List<String> keys(AckOutbox outbox) {
        List<String> out = new ArrayList<>();
        for (Ack ack : outbox.pending()) out.add(ack.id + ":" + ack.status.wire);
        return out;
    }

    @Test
    public void keepsAcksInOrderUntilConfirmed() {
        AckOutbox outbox = AckOutbox.open(new MemoryStore());
        outbox.add(Ack.of("a", AckStatus.RECEIVED, 1));
        outbox.add(Ack.of("a", AckStatus.SENT, 2));
        outbox.add(Ack.failed("b", "EXPIRED", 3));
        outbox.confirm(Ack.of("a", AckStatus.RECEIVED, 0).key());
        outbox.confirm("nothing");
        assertEquals(java.util.Arrays.asList("a:sent", "b:failed"), keys(outbox));
    }

    @Test
    public void survivesARestart() {
        MemoryStore store = new MemoryStore();
        AckOutbox outbox = AckOutbox.open(store);
        outbox.add(Ack.of("a", AckStatus.SENT, 2));
        outbox.add(Ack.failed("b", "RESULT_ERROR_NO_SERVICE", 3));
        AckOutbox again = AckOutbox.open(store);
        assertEquals(keys(outbox), keys(again));
        assertEquals("RESULT_ERROR_NO_SERVICE", again.pending().get(1).error);
        assertEquals(Long.valueOf(3), again.pending().get(1).at);
    }

    @Test
    public void startsEmptyFromADamagedFileAndKeepsWorkingWithoutADisk() {
        MemoryStore store = new MemoryStore();
        store.text = "{garbage";
        AckOutbox outbox = AckOutbox.open(store);
        assertEquals(0, outbox.size());
        store.broken = true;
        assertFalse(outbox.add(Ack.of("a", AckStatus.SENT, 1)));
        assertEquals(1, outbox.size());
    }

    @Test
    public void dropsTheOldestPastItsCap() {
        AckOutbox outbox = AckOutbox.open(new MemoryStore(), 10);
        for (int i = 0; i <= 10; i++) outbox.add(Ack.of("j" + i, AckStatus.SENT, i));
        assertEquals(10, outbox.size());
        assertEquals("j1", outbox.pending().get(0).id);
    }
}
