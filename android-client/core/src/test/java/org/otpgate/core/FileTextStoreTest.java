package org.otpgate.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import java.io.File;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

public class FileTextStoreTest {
    @Rule
    public TemporaryFolder folder = new TemporaryFolder();

    @Test
    public void readsNothingBeforeTheFirstWrite() throws Exception {
        assertNull(new FileTextStore(new File(folder.getRoot(), "ledger.json")).read());
    }

    @Test
    public void replacesTheFileWholeAndLeavesNoTemporaryFileBehind() throws Exception {
        File file = new File(folder.getRoot(), "state/ledger.json");
        FileTextStore store = new FileTextStore(file);
        store.write("{\"version\":1,\"text\":\"é😀\"}");
        store.write("second");
        assertEquals("second", store.read());
        assertEquals("second", new FileTextStore(file).read());
        assertArrayEquals(new String[] {"ledger.json"}, file.getParentFile().list());
    }

    @Test
    public void failsLoudlyWhenItCannotWrite() throws Exception {
        File blocker = folder.newFile("not-a-dir");
        FileTextStore store = new FileTextStore(new File(blocker, "ledger.json"));
        try {
            store.write("x");
            throw new AssertionError("wrote under a file");
        } catch (java.io.IOException expected) {
            assertTrue(expected.getMessage() != null);
        }
    }
}
