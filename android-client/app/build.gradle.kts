plugins {
    id("com.android.application")
}

android {
    namespace = "org.otpgate.client"
    compileSdk = 35

    defaultConfig {
        applicationId = "org.otpgate.client"
        minSdk = 26
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
    }

    buildTypes {
        release {
            // Paho finds its network modules through ServiceLoader; shrinking would need keep
            // rules for that, and an app that sends a few SMS a minute gains nothing from it.
            isMinifyEnabled = false
            proguardFiles(getDefaultProguardFile("proguard-android-optimize.txt"), "proguard-rules.pro")
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    buildFeatures {
        buildConfig = true
    }

    packaging {
        resources {
            excludes += "META-INF/*.kotlin_module"
        }
    }
}

dependencies {
    implementation(project(":core"))
    // MQTT 3.1.1 client used directly inside our own foreground service (not the Paho Android Service).
    implementation("org.eclipse.paho:org.eclipse.paho.client.mqttv3:1.2.5")
    // Nothing else: the app uses Android's framework APIs only (no AndroidX, no QR library), so
    // scripts/compile-app.sh can compile it against the framework jar from Maven Central.
}
