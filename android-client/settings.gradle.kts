// The otpgate Android client: `core` (plain Java, no android.* imports, tested on
// the JVM by scripts/jvm-test.sh) and `app` (the Android application).
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "otpgate-android"
include(":core", ":app")
