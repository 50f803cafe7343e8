#!/usr/bin/env bash
# Compiles every Java source of the Android app (android-client/app) with javac,
# without Gradle or the Android SDK, which these machines cannot download:
#
#   - the Android 15 (API 35) framework: Robolectric's android-all jar from Maven
#     Central (android.*, org.json…; it leaves java.* to the JVM), on the class path;
#   - java.* as of Java 8 (--release 8): the library Android 8.0, the minSdk, has,
#     as jvm-test.sh does for the core;
#   - Eclipse Paho 1.2.5 and the core (android-client/core, compiled here too);
#   - R, BuildConfig and a list of the framework names res/ uses, generated from
#     res/ and the manifest by scripts/app_resources.py (it also fails on a
#     reference to a resource that does not exist);
#   - then every component the manifest names must be among the compiled classes.
#
# -Xlint:all -Werror: a warning (deprecated API without a reason, unchecked
# cast…) fails the compile. Jars are cached in android-client/.cache/ (git-ignored);
# OTPGATE_JAR_CACHE overrides the folder. Prints "compile-app: ok …" and exits 0,
# or names what failed and exits non-zero.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
cache="${OTPGATE_JAR_CACHE:-$here/.cache/jars}"
fail() { echo "compile-app: $*" >&2; exit 1; }

# Robolectric's build of Android 15's framework (android-15 = API 35). The plain
# jar is what the platform exposes; the -instrumented one adds Robolectric's hooks.
ANDROID_ALL="org.robolectric:android-all:15-robolectric-12650502"
PAHO="org.eclipse.paho:org.eclipse.paho.client.mqttv3:1.2.5"
# Their SHA-256, so a truncated download or a different artifact is refused, not compiled against.
ANDROID_ALL_SHA256=6c0670454f6fcee9f1b17aa393e81d71bf26e7e6ae7c5777ed3924b062191d5b
PAHO_SHA256=59914287adac506a28d5e8172eed262a22605f3df4d426b9d92f41dae2448185

command -v python3 >/dev/null || fail "python3 not found"

# android-all 15's classes are Java 17 class files (major 61): JDK 17's javac reads them.
javac_bin="${JAVAC:-javac}"
command -v "$javac_bin" >/dev/null || fail "javac not found: install a JDK 17 or newer"

fetch() { # GROUP:ARTIFACT:VERSION SHA256 → path of the cached jar
  local coordinates="$1" sha256="$2" group artifact version
  IFS=: read -r group artifact version <<<"$coordinates"
  local jar="$cache/$artifact-$version.jar"
  if [ ! -s "$jar" ]; then
    command -v mvn >/dev/null || fail "$jar is not cached and mvn is not installed to fetch it (Debian: apt-get install maven)"
    mkdir -p "$cache"
    echo "compile-app: fetching $coordinates from Maven Central" >&2
    mvn -q -B dependency:copy -Dartifact="$coordinates" -DoutputDirectory="$cache" >&2 \
      || fail "could not fetch $coordinates with mvn (is Maven Central reachable?)"
    [ -s "$jar" ] || fail "mvn reported success but $jar is missing"
  fi
  local actual
  actual="$(sha256sum "$jar" | cut -d' ' -f1)"
  if [ "$actual" != "$sha256" ]; then
    rm -f "$jar"
    fail "$jar has SHA-256 $actual, not $sha256 (deleted; run again to fetch it afresh)"
  fi
  echo "$jar"
}

android_jar="$(fetch "$ANDROID_ALL" "$ANDROID_ALL_SHA256")"
paho_jar="$(fetch "$PAHO" "$PAHO_SHA256")"

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
mkdir -p "$out/gen" "$out/core" "$out/app"

python3 "$here/scripts/app_resources.py" gen "$out/gen" || fail "res/ or the manifest has a problem (above)"

# --release 8: Java 8's API and syntax, what Android 8.0 (API 26, the minSdk) has, so
# no newer JDK method (List.of, String.isBlank…) slips in; -Xlint:-options silences only
# the notice that 8 is an old release. android-all brings android.* (and org.json).
common=(--release 8 -encoding UTF-8 -Xlint:-options -Xmaxerrs 200)

# The core as the app uses it: its main sources against Android's library and Paho
# (its own warnings are jvm-test.sh's business, so not -Werror here).
mapfile -t core_sources < <(find "$here/core/src/main/java" -name '*.java' | sort)
"$javac_bin" "${common[@]}" -nowarn -cp "$android_jar:$paho_jar" -d "$out/core" "${core_sources[@]}" \
  || fail "the core (android-client/core/src/main) does not compile against Android 15's framework"

mapfile -t app_sources < <(find "$here/app/src/main/java" -name '*.java' | sort)
[ "${#app_sources[@]}" -gt 0 ] || fail "no sources under app/src/main/java"
mapfile -t gen_sources < <(find "$out/gen" -name '*.java' | sort)
# -classfile off: android-all's own class files carry annotations (UnsupportedAppUsage) whose
# types it ships stripped, which javac would report on every framework class the app touches.
"$javac_bin" "${common[@]}" -Xlint:all,-options,-serial,-classfile -Werror -cp "$out/core:$android_jar:$paho_jar" -d "$out/app" \
  "${app_sources[@]}" "${gen_sources[@]}" \
  || fail "the app (android-client/app/src/main/java) does not compile against Android 15's framework (errors above)"

python3 "$here/scripts/app_resources.py" manifest "$out/app" || fail "the manifest names classes that do not exist"

classes=$(find "$out/app" -name '*.class' | wc -l)
echo "compile-app: ok: ${#app_sources[@]} app sources ($classes classes) and ${#core_sources[@]} core sources against $ANDROID_ALL and Paho 1.2.5"
