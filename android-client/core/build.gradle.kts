// The phone's rules and its network stack in plain Java: no android.* imports and
// one dependency (Paho, from Maven Central), so the same sources compile and run
// their JUnit tests on any JVM (scripts/jvm-test.sh does it with javac alone).
plugins {
    `java-library`
}

// No java { toolchain { } }: it made Gradle look for a JDK 17 and fail on Android
// Studio's bundled JDK 21 (no toolchain resolver is configured). `release` below
// pins the API level instead, with whatever JDK 17+ runs Gradle.

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
    // The MQTT client of org.otpgate.core.net; `api` because the app sees its types through PhoneLink.
    api("org.eclipse.paho:org.eclipse.paho.client.mqttv3:1.2.5")
    // The core parses payloads with org.json, which Android itself provides: compile against a JVM
    // build of it (what Debian ships as com.android.json.jar) but never package it with the app.
    compileOnly("com.vaadin.external.google:android-json:0.0.20131108.vaadin1")
    testImplementation("junit:junit:4.13.2")
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
    // The *LiveTest classes start the gateway of this repository (node --import tsx api/main.ts).
    systemProperty("otpgate.repo", rootProject.file("..").absolutePath)
}
