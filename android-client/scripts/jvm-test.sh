#!/usr/bin/env bash
# Compiles the JVM core of the Android client and its JUnit 4 tests with javac
# (no Gradle, no Android SDK) and runs them: one JSON line per test on stdout
# ({"test":"Class#method","status":"passed"|"failed","message":…}), a summary on
# stderr, exit status non-zero when a test failed.
#
# The TLS tests' certificates and private keys are not in the repository: they
# are generated with openssl (core/src/test/resources/certs/make-certs.sh) into
# a temporary folder, handed to the tests as -Dotpgate.certs, and deleted on exit.
#
# --fixture-verdicts: compile, then print instead the core's verdict on every
# payload of test/fixtures/mqtt-payloads.json, one JSON line each
# ({"fixture":"kind: name","accepted":true|false}); no certificates needed.
#
# The *LiveTest classes start a real gateway (node --import tsx api/main.ts from the repository root,
# so `npm ci` must have run) and drive the core's network stack (org.otpgate.core.net) against it with
# Eclipse Paho Java 1.2.5.
#
# Needs a JDK (javac ≥ 17), openssl, node, and Debian's jars: apt-get install junit4 libandroid-json-java
# (junit4.jar, hamcrest-core.jar, com.android.json.jar in /usr/share/java; JAVA_LIBS overrides the folder).
# Paho comes from Maven Central: fetched once with `mvn dependency:copy` into android-client/.cache/jars/
# (git-ignored, shared with compile-app.sh; OTPGATE_JAR_CACHE overrides it), checked against its SHA-256; needs `mvn`
# (Debian: apt-get install maven) and access to repo.maven.apache.org the first time only.
set -euo pipefail

mode=junit
case "${1:-}" in
  "") ;;
  --fixture-verdicts) mode=verdicts ;;
  *) echo "usage: $0 [--fixture-verdicts]" >&2; exit 2 ;;
esac

here="$(cd "$(dirname "$0")/.." && pwd)"
repo="$(cd "$here/.." && pwd)"
libs="${JAVA_LIBS:-/usr/share/java}"

fail() { echo "jvm-test: $*" >&2; exit 2; }
command -v javac >/dev/null || fail "javac not found: install a JDK 17 (Debian: default-jdk-headless or openjdk-17-jdk-headless)"
command -v java >/dev/null || fail "java not found"
[ "$mode" = verdicts ] || command -v openssl >/dev/null || fail "openssl not found: it makes the TLS tests' certificates (Debian: apt-get install openssl)"
for jar in junit4.jar hamcrest-core.jar com.android.json.jar; do
  [ -r "$libs/$jar" ] || fail "$libs/$jar is missing: apt-get install junit4 libandroid-json-java"
done

# Eclipse Paho Java: the MQTT client the app ships, compiled into the core's network stack.
paho_coordinates=org.eclipse.paho:org.eclipse.paho.client.mqttv3:1.2.5
paho_sha256=59914287adac506a28d5e8172eed262a22605f3df4d426b9d92f41dae2448185
cache="${OTPGATE_JAR_CACHE:-$here/.cache/jars}" # shared with compile-app.sh
paho_jar="$cache/org.eclipse.paho.client.mqttv3-1.2.5.jar"
if [ ! -s "$paho_jar" ]; then
  command -v mvn >/dev/null || fail "$paho_jar is missing and mvn is not installed to fetch it from Maven Central (Debian: apt-get install maven)"
  mkdir -p "$cache"
  echo "jvm-test: fetching $paho_coordinates from Maven Central into $cache" >&2
  mvn -q -B dependency:copy -Dartifact="$paho_coordinates" -DoutputDirectory="$cache" >&2 \
    || fail "mvn could not fetch $paho_coordinates from Maven Central"
fi
actual_sha256=$(sha256sum "$paho_jar" | cut -d' ' -f1)
if [ "$actual_sha256" != "$paho_sha256" ]; then
  rm -f "$paho_jar"
  fail "$paho_jar has SHA-256 $actual_sha256, not the expected $paho_sha256 (deleted; run again to fetch it afresh)"
fi
classpath_libs="$libs/junit4.jar:$libs/hamcrest-core.jar:$libs/com.android.json.jar:$paho_jar"

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
mkdir -p "$out/main" "$out/test"

main_sources=$(find "$here/core/src/main/java" -name '*.java' | sort)
test_sources=$(find "$here/core/src/test/java" -name '*.java' | sort)

# --release 8 for the core: the Java APIs Android 8.0 (API 26, our minSdk) has, so no
# newer JDK method (List.of, String.isBlank…) can slip into code that must run there.
# org.json is Android's own (the core parses payloads with it); on the JVM Debian's build of it stands in.
# shellcheck disable=SC2086
javac --release 8 -encoding UTF-8 -Xlint:all,-serial,-options -d "$out/main" -cp "$paho_jar:$libs/com.android.json.jar" $main_sources >&2
# shellcheck disable=SC2086
javac --release 17 -encoding UTF-8 -d "$out/test" -cp "$out/main:$classpath_libs" $test_sources >&2

classpath="$out/test:$out/main:$here/core/src/test/resources:$classpath_libs"
fixtures="$repo/test/fixtures/mqtt-payloads.json"

if [ "$mode" = verdicts ]; then
  java -Dotpgate.fixtures="$fixtures" -cp "$classpath" org.otpgate.core.PayloadFixturesTest
  exit 0
fi

# Fresh certificates and keys for this run only, removed with $out by the trap above.
bash "$here/core/src/test/resources/certs/make-certs.sh" "$out/certs" >&2 || fail "make-certs.sh could not generate the test certificates"

# Every *Test class in the test tree.
classes=$(cd "$here/core/src/test/java" && find . -name '*Test.java' | sed 's|^\./||; s|\.java$||; s|/|.|g' | sort)

# shellcheck disable=SC2086
java -Dotpgate.fixtures="$fixtures" -Dotpgate.certs="$out/certs" -Dotpgate.repo="$repo" \
  -cp "$classpath" \
  org.otpgate.testing.JsonLinesRunner $classes
