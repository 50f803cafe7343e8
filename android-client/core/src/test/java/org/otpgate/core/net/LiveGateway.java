package org.otpgate.core.net;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.json.JSONObject;

/**
 * A real otpgate gateway for the live tests: {@code node --import tsx api/main.ts}
 * from the repository root, configured by environment only (as
 * test/support/gateway-process.ts does), on free loopback ports, with its
 * state in a temporary DATA_DIR that survives {@link #restart()}.
 */
final class LiveGateway implements AutoCloseable {
    static final String ADMIN_KEY = "live-test-admin-key-0123456789abcdef";
    private static final long START_TIMEOUT_MS = 30_000;

    final int httpPort;
    final int mqttsPort;
    final File dataDir;
    private final File repo;
    private final Map<String, String> extraEnv;
    private final File log;
    private Process process;

    private LiveGateway(Map<String, String> extraEnv) throws IOException {
        String repoPath = System.getProperty("otpgate.repo");
        if (repoPath == null || repoPath.isEmpty()) throw new IllegalStateException("-Dotpgate.repo (the repository root) is not set; scripts/jvm-test.sh sets it");
        this.repo = new File(repoPath);
        this.httpPort = freePort();
        this.mqttsPort = freePort();
        this.dataDir = Files.createTempDirectory("otpgate-live-").toFile();
        this.log = new File(dataDir, "gateway.log");
        this.extraEnv = extraEnv;
    }

    static LiveGateway start(Map<String, String> env) throws Exception {
        LiveGateway gateway = new LiveGateway(env);
        gateway.launch();
        return gateway;
    }

    static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }

    String url() {
        return "http://127.0.0.1:" + httpPort;
    }

    private void launch() throws Exception {
        ProcessBuilder builder = new ProcessBuilder("node", "--import", "tsx", "api/main.ts").directory(repo);
        Map<String, String> env = builder.environment();
        env.put("DATA_DIR", dataDir.getAbsolutePath());
        env.put("ADMIN_API_KEY", ADMIN_KEY);
        env.put("HOST", "127.0.0.1");
        env.put("PORT", String.valueOf(httpPort));
        env.put("MQTT_TLS_PORT", String.valueOf(mqttsPort));
        env.put("MQTT_PORT", "0");
        env.put("MQTT_HOST", "127.0.0.1");
        env.put("PUBLIC_MQTT_URL", "mqtts://127.0.0.1:" + mqttsPort);
        env.put("STORE", "sqlite");
        env.put("FAILOVER_ORDER", "device");
        env.put("LOG_LEVEL", "warn");
        env.put("OTP_RESEND_COOLDOWN_SECONDS", "0");
        env.put("RATE_LIMIT_PER_IP", "100000");
        env.put("RATE_LIMIT_PER_KEY", "100000");
        // The fraud guard's volume checks off, as test/support/gateway.ts does for suites that send many codes.
        env.put("FRAUD_KEY_MAX_PER_MINUTE", "0");
        env.put("FRAUD_KEY_MAX_PER_DAY", "0");
        env.put("FRAUD_NUMBER_MAX_PER_HOUR", "0");
        env.put("FRAUD_PREFIX_MAX_PER_HOUR", "0");
        env.put("FRAUD_WATCH_MIN_SENDS", "0");
        env.putAll(extraEnv);
        builder.redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log));
        try {
            process = builder.start();
        } catch (IOException e) {
            throw new IllegalStateException("cannot start the gateway with `node` (is Node.js installed and on PATH?): " + e.getMessage(), e);
        }
        long deadline = System.currentTimeMillis() + START_TIMEOUT_MS;
        while (System.currentTimeMillis() < deadline) {
            if (!process.isAlive()) throw new IllegalStateException("the gateway exited with " + process.exitValue() + ":\n" + output());
            try {
                if (get("/readyz").status == 200) return;
            } catch (IOException notYet) {
                // still starting
            }
            Thread.sleep(100);
        }
        throw new IllegalStateException("the gateway did not come up within " + START_TIMEOUT_MS + " ms:\n" + output());
    }

    /** SIGKILL, as a crash or an OOM kill would, then the same process again on the same ports and DATA_DIR. */
    void restart() throws Exception {
        kill();
        launch();
    }

    void kill() throws InterruptedException {
        if (process == null) return;
        process.destroyForcibly();
        process.waitFor(10, TimeUnit.SECONDS);
    }

    String output() {
        try {
            String text = new String(Files.readAllBytes(log.toPath()), StandardCharsets.UTF_8);
            return text.length() > 4000 ? text.substring(text.length() - 4000) : text;
        } catch (IOException e) {
            return "(no output: " + e.getMessage() + ")";
        }
    }

    @Override
    public void close() throws Exception {
        kill();
        deleteTree(dataDir);
    }

    static void deleteTree(File file) {
        File[] children = file.listFiles();
        if (children != null) for (File child : children) deleteTree(child);
        //noinspection ResultOfMethodCallIgnored
        file.delete();
    }

    // --- HTTP ---------------------------------------------------------------------

    static final class Reply {
        final int status;
        final String body;

        Reply(int status, String body) {
            this.status = status;
            this.body = body;
        }

        JSONObject json() {
            try {
                return new JSONObject(body);
            } catch (org.json.JSONException e) {
                throw new AssertionError("not JSON (HTTP " + status + "): " + body, e);
            }
        }
    }

    Reply get(String path) throws IOException {
        return call("GET", path, null);
    }

    Reply post(String path, JSONObject body) throws IOException {
        return call("POST", path, body);
    }

    Reply call(String method, String path, JSONObject body) throws IOException {
        HttpURLConnection connection = (HttpURLConnection) new URL(url() + path).openConnection();
        connection.setRequestMethod(method);
        connection.setConnectTimeout(5_000);
        connection.setReadTimeout(10_000);
        connection.setRequestProperty("authorization", "Bearer " + ADMIN_KEY);
        if (body != null) {
            connection.setDoOutput(true);
            connection.setRequestProperty("content-type", "application/json");
            try (OutputStream out = connection.getOutputStream()) {
                out.write(body.toString().getBytes(StandardCharsets.UTF_8));
            }
        }
        try {
            int status = connection.getResponseCode();
            InputStream in = status >= 400 ? connection.getErrorStream() : connection.getInputStream();
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            if (in != null) {
                try (InputStream stream = in) {
                    byte[] buffer = new byte[4096];
                    for (int n; (n = stream.read(buffer)) > 0; ) out.write(buffer, 0, n);
                }
            }
            return new Reply(status, new String(out.toByteArray(), StandardCharsets.UTF_8));
        } finally {
            connection.disconnect();
        }
    }
}
