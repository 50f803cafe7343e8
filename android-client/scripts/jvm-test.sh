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
# Needs a JDK (javac ≥ 17), openssl, and Debian's jars: apt-get install junit4 libandroid-json-java
# (junit4.jar, hamcrest-core.jar, com.android.json.jar in /usr/share/java; JAVA_LIBS overrides the folder).
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
classpath_libs="$libs/junit4.jar:$libs/hamcrest-core.jar:$libs/com.android.json.jar"

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
mkdir -p "$out/main" "$out/test"

main_sources=$(find "$here/core/src/main/java" -name '*.java' | sort)
test_sources=$(find "$here/core/src/test/java" -name '*.java' | sort)

# --release 8 for the core: the Java APIs Android 8.0 (API 26, our minSdk) has, so no
# newer JDK method (List.of, String.isBlank…) can slip into code that must run there.
# shellcheck disable=SC2086
javac --release 8 -encoding UTF-8 -Xlint:all,-serial,-options -d "$out/main" $main_sources >&2
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
java -Dotpgate.fixtures="$fixtures" -Dotpgate.certs="$out/certs" \
  -cp "$classpath" \
  org.otpgate.testing.JsonLinesRunner $classes
