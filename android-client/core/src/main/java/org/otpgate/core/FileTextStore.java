package org.otpgate.core;

import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;

/**
 * A {@link TextStore} in one file, replaced atomically: written to a temporary
 * file, fsync'ed, then renamed over the old one, so a crash or a power cut
 * leaves either the old state or the new one, never half of one; then the
 * folder is synced, so the rename lasts too. Plain java.io and java.nio.file
 * (Android has both from API 26), tested on the JVM.
 */
public final class FileTextStore implements TextStore {
    private final File file;

    public FileTextStore(File file) {
        this.file = file;
    }

    @Override
    public String read() throws IOException {
        if (!file.exists()) return null;
        return new String(Files.readAllBytes(file.toPath()), StandardCharsets.UTF_8);
    }

    @Override
    public void write(String text) throws IOException {
        File dir = file.getAbsoluteFile().getParentFile();
        if (dir != null && !dir.isDirectory() && !dir.mkdirs()) throw new IOException("cannot create " + dir);
        File temp = new File(dir, file.getName() + ".tmp");
        try (FileOutputStream out = new FileOutputStream(temp)) {
            out.write(text.getBytes(StandardCharsets.UTF_8));
            out.getFD().sync();
        }
        try {
            Files.move(temp.toPath(), file.toPath(), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(temp.toPath(), file.toPath(), StandardCopyOption.REPLACE_EXISTING);
        }
        syncFolder(dir);
    }

    /**
     * The rename is a change to the folder, durable only once the folder is synced: without it a power cut soon
     * after can bring the old file back, and with it a ledger that no longer knows a job the phone already sent.
     */
    private static void syncFolder(File dir) {
        if (dir == null) return;
        try (FileChannel folder = FileChannel.open(dir.toPath(), StandardOpenOption.READ)) {
            folder.force(true);
        } catch (IOException | RuntimeException e) {
            // Best effort: not every file system lets a folder be opened and synced; the new file is complete either way.
        }
    }
}
