// The phone's rules in plain Java: no android.* imports, no dependencies, so the
// same sources compile and run their JUnit tests on any JVM (scripts/jvm-test.sh
// does it with javac alone).
plugins {
    `java-library`
}

java {
    toolchain {
        languageVersion.set(JavaLanguageVersion.of(17))
    }
}

tasks.named<JavaCompile>("compileJava") {
    // The Java 8 API is what Android 8.0 (API 26, the app's minSdk) has; newer JDK
    // methods such as List.of or String.isBlank would compile and then crash there.
    options.release.set(8)
    options.compilerArgs.addAll(listOf("-Xlint:all,-serial,-options"))
}

tasks.named<JavaCompile>("compileTestJava") {
    options.release.set(17)
}

dependencies {
    testImplementation("junit:junit:4.13.2")
    // Android's own org.json, packaged for the JVM (what Debian ships as com.android.json.jar).
    testImplementation("com.vaadin.external.google:android-json:0.0.20131108.vaadin1")
}

// The TLS tests' certificates and private keys are never committed: openssl makes
// fresh ones for every test run (as scripts/jvm-test.sh does) in a scratch folder
// under build/tmp, deleted again once the tests are done.
val testCertsDir = layout.buildDirectory.dir("tmp/test-certs")
val makeTestCerts by tasks.registering(Exec::class) {
    description = "Generates the throwaway certificates and keys of the TLS tests with openssl."
    val script = file("src/test/resources/certs/make-certs.sh")
    val target = testCertsDir.get().asFile
    outputs.upToDateWhen { false }
    doFirst { target.deleteRecursively() }
    commandLine("bash", script.absolutePath, target.absolutePath)
}
val deleteTestCerts by tasks.registering(Delete::class) {
    delete(testCertsDir)
}

tasks.named<Test>("test") {
    dependsOn(makeTestCerts)
    finalizedBy(deleteTestCerts)
    // The fixtures shared with the TypeScript tests of the repository.
    systemProperty("otpgate.fixtures", rootProject.file("../test/fixtures/mqtt-payloads.json").absolutePath)
    systemProperty("otpgate.certs", testCertsDir.get().asFile.absolutePath)
}
