package org.otpgate.core.net;

import java.io.File;
import java.io.IOException;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.util.concurrent.TimeUnit;

/** A throwaway redis-server on a free loopback port, for the gateway whose broker must outlive its process. */
final class LiveRedis implements AutoCloseable {
    private final Process process;
    private final int port;
    private final File dir;

    private LiveRedis(Process process, int port, File dir) {
        this.process = process;
        this.port = port;
        this.dir = dir;
    }

    static LiveRedis start() throws Exception {
        int port = LiveGateway.freePort();
        File dir = Files.createTempDirectory("otpgate-redis-").toFile();
        Process process;
        try {
            process = new ProcessBuilder("redis-server", "--port", String.valueOf(port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", dir.getAbsolutePath())
                    .redirectErrorStream(true).redirectOutput(new File(dir, "redis.log")).start();
        } catch (IOException e) {
            throw new IllegalStateException("cannot start redis-server (Debian: apt-get install redis-server): " + e.getMessage(), e);
        }
        long deadline = System.currentTimeMillis() + 10_000;
        while (System.currentTimeMillis() < deadline) {
            try (Socket socket = new Socket(InetAddress.getLoopbackAddress(), port)) {
                return new LiveRedis(process, port, dir);
            } catch (IOException notYet) {
                if (!process.isAlive()) break;
                Thread.sleep(50);
            }
        }
        process.destroyForcibly();
        throw new IllegalStateException("redis-server did not start on port " + port);
    }

    String url() {
        return "redis://127.0.0.1:" + port;
    }

    @Override
    public void close() throws Exception {
        process.destroyForcibly();
        process.waitFor(5, TimeUnit.SECONDS);
        LiveGateway.deleteTree(dir);
    }
}
