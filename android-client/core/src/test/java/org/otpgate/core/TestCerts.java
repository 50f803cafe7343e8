package org.otpgate.core;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Base64;
import java.util.List;

/**
 * The test certificates and keys. They are never committed: make-certs.sh
 * (src/test/resources/certs/) generates them with openssl into a temporary
 * folder at test time, and scripts/jvm-test.sh and the Gradle build pass that
 * folder as {@code -Dotpgate.certs}.
 */
final class TestCerts {
    private static final long DAY_MS = 86_400_000L;

    private TestCerts() {}

    static File dir() {
        String configured = System.getProperty("otpgate.certs");
        if (configured == null || configured.isEmpty()) {
            throw new IllegalStateException("no test certificates: run src/test/resources/certs/make-certs.sh DIR and pass -Dotpgate.certs=DIR"
                    + " (scripts/jvm-test.sh and the Gradle test task do)");
        }
        return new File(configured);
    }

    static String text(String name) {
        File file = new File(dir(), name);
        try {
            return new String(Files.readAllBytes(file.toPath()), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IllegalStateException("test certificate file " + file + " is missing (made by make-certs.sh)", e);
        }
    }

    static X509Certificate cert(String name) {
        List<X509Certificate> certs = Pem.certificates(text(name + ".pem"));
        if (certs.size() != 1) throw new IllegalStateException(name + " holds " + certs.size() + " certificates");
        return certs.get(0);
    }

    /** openssl's "AB:CD:…" output. */
    static String fingerprint(String name) {
        return text(name + ".fingerprint").trim();
    }

    static PrivateKey key(String name) throws Exception {
        String pem = text(name + "-key.pem").replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", "");
        return KeyFactory.getInstance("EC").generatePrivate(new PKCS8EncodedKeySpec(Base64.getDecoder().decode(pem)));
    }

    static X509Certificate[] chain(String... names) {
        X509Certificate[] chain = new X509Certificate[names.length];
        for (int i = 0; i < names.length; i++) chain[i] = cert(names[i]);
        return chain;
    }

    /**
     * A moment at which every generated certificate is valid: a day after the
     * last one was issued (they are made seconds apart and last 100 years), so
     * tests do not depend on the day they run.
     */
    static long validNow() {
        long latest = 0;
        for (String name : new String[] {"ca", "rogue-ca", "intermediate", "server", "rogue-server", "via-intermediate", "client-only", "wildcard", "cn-only", "signed-by-leaf"}) {
            latest = Math.max(latest, cert(name).getNotBefore().getTime());
        }
        return latest + DAY_MS;
    }

    /** A day before {@code name} became valid, and a day after it expired. */
    static long beforeValidity(String name) {
        return cert(name).getNotBefore().getTime() - DAY_MS;
    }

    static long afterValidity(String name) {
        return cert(name).getNotAfter().getTime() + DAY_MS;
    }
}
