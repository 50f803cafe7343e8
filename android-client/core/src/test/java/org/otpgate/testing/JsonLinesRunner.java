package org.otpgate.testing;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.runner.Description;
import org.junit.runner.JUnitCore;
import org.junit.runner.Result;
import org.junit.runner.notification.Failure;
import org.junit.runner.notification.RunListener;
import org.json.JSONObject;

/**
 * Runs JUnit 4 test classes and prints one JSON line per test on stdout,
 * {"test":"Class#method","status":"passed"|"failed"|"skipped","message":…},
 * for test/android/jvm-core.test.ts to turn into vitest tests. Anything the
 * tests themselves print goes to stderr so stdout stays parseable. Exits 1 when
 * a test failed or no test ran.
 */
public final class JsonLinesRunner {
    private JsonLinesRunner() {}

    public static void main(String[] args) throws ClassNotFoundException {
        PrintStream stdout = System.out;
        System.setOut(System.err);
        List<Class<?>> classes = new ArrayList<>();
        for (String name : args) classes.add(Class.forName(name));

        JsonLines listener = new JsonLines(stdout);
        JUnitCore junit = new JUnitCore();
        junit.addListener(listener);
        Result result = junit.run(classes.toArray(new Class<?>[0]));

        System.err.printf("jvm-test: %d passed, %d failed, %d skipped%n", listener.passed, listener.failed, listener.skipped);
        System.exit(result.wasSuccessful() && listener.passed > 0 ? 0 : 1);
    }

    static final class JsonLines extends RunListener {
        private final PrintStream out;
        private Failure current;
        int passed;
        int failed;
        int skipped;

        JsonLines(PrintStream out) {
            this.out = out;
        }

        @Override
        public void testStarted(Description description) {
            current = null;
        }

        @Override
        public void testFailure(Failure failure) {
            if (failure.getDescription().getMethodName() == null) {
                // A class-level failure (@BeforeClass, a runner error): no testFinished follows.
                print(failure.getDescription(), "failed", message(failure));
                failed++;
            } else {
                current = failure;
            }
        }

        @Override
        public void testAssumptionFailure(Failure failure) {
            print(failure.getDescription(), "skipped", failure.getMessage());
            skipped++;
            current = failure;
        }

        @Override
        public void testIgnored(Description description) {
            print(description, "skipped", "ignored");
            skipped++;
        }

        @Override
        public void testFinished(Description description) {
            if (current == null) {
                print(description, "passed", null);
                passed++;
            } else if (!(current.getException() instanceof org.junit.AssumptionViolatedException)) {
                print(description, "failed", message(current));
                failed++;
            }
            current = null;
        }

        private void print(Description description, String status, String message) {
            String className = description.getTestClass() != null
                    ? description.getTestClass().getSimpleName()
                    : description.getClassName();
            String method = description.getMethodName() != null ? description.getMethodName() : "<class>";
            Map<String, Object> line = new LinkedHashMap<>();
            line.put("test", className + "#" + method);
            line.put("status", status);
            line.put("message", message);
            out.println(new JSONObject(line).toString());
            out.flush();
        }

        /** The failure and where in the test it happened, short enough for a vitest message. */
        private static String message(Failure failure) {
            Throwable error = failure.getException();
            StringBuilder text = new StringBuilder(String.valueOf(error));
            for (StackTraceElement frame : error.getStackTrace()) {
                if (frame.getClassName().startsWith("org.otpgate.")) {
                    text.append(" at ").append(frame);
                    break;
                }
            }
            return text.length() > 2000 ? text.substring(0, 2000) + "…" : text.toString();
        }
    }
}
