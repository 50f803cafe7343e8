#!/usr/bin/env python3
"""What aapt2 would give javac, for compile-app.sh, which has no Android SDK.

The machines that build otpgate reach Maven Central but not Google's Maven or the
SDK, so there is no aapt2 to turn app/src/main/res into an R class. This script
does the small part of that job the Java compile needs, and checks what would
otherwise go unchecked until Android Studio builds the app:

  gen OUT_DIR     writes OUT_DIR/org/otpgate/client/{R,BuildConfig}.java and a
                  FrameworkRefs.java that names, as Java expressions, every
                  framework attribute (android:…), framework resource
                  (@android:…, ?android:attr/…) and view class used by the
                  manifest and res/, so javac checks each one against the
                  Android 15 framework jar. Fails when a @type/name reference
                  points at nothing in res/, or when an attribute is not in the
                  android: namespace (no AndroidX or other library supplies one).
  manifest CLASSES_DIR
                  fails unless every component the manifest names was compiled.

The ids are made up (0x7f, type, index) like aapt2's; only an APK built by the
Android Gradle Plugin has the real ones, which no code may depend on anyway.
"""
import os
import re
import sys
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
APP = os.path.join(HERE, "..", "app")
RES = os.path.join(APP, "src", "main", "res")
MANIFEST = os.path.join(APP, "src", "main", "AndroidManifest.xml")
GRADLE = os.path.join(APP, "build.gradle.kts")

ANDROID_NS = "http://schemas.android.com/apk/res/android"
TOOLS_NS = "http://schemas.android.com/tools"
VALUE_TYPES = {"string": "string", "color": "color", "dimen": "dimen", "bool": "bool", "integer": "integer",
               "style": "style", "plurals": "plurals", "array": "array", "string-array": "array",
               "integer-array": "array", "drawable": "drawable", "fraction": "fraction"}
REF = re.compile(r"^@(\+)?(?:(android):)?([a-z]+)/([A-Za-z0-9_.]+)$")
THEME_REF = re.compile(r"^\?(?:(android):)?(?:attr/)?([A-Za-z0-9_]+)$")
# Layout tags that live in android.view rather than android.widget.
VIEW_PACKAGE_TAGS = {"View", "ViewGroup", "ViewStub", "SurfaceView", "TextureView"}
LAYOUT_PSEUDO_TAGS = {"merge", "include", "requestFocus", "fragment", "tag"}

problems = []


def java_name(name):
    return name.replace(".", "_")


def xml_files():
    for folder in sorted(os.listdir(RES)):
        path = os.path.join(RES, folder)
        if not os.path.isdir(path):
            continue
        for name in sorted(os.listdir(path)):
            if name.endswith(".xml"):
                yield folder.split("-")[0], os.path.join(path, name)


def collect():
    """Resources defined by res/: {type: set(names)}."""
    defined = {}
    for folder in sorted(os.listdir(RES)):
        path = os.path.join(RES, folder)
        kind = folder.split("-")[0]
        if not os.path.isdir(path):
            continue
        for name in sorted(os.listdir(path)):
            if kind == "values":
                root = ET.parse(os.path.join(path, name)).getroot()
                for element in root:
                    tag = element.get("type") if element.tag == "item" else element.tag
                    if tag in VALUE_TYPES:
                        defined.setdefault(VALUE_TYPES[tag], set()).add(element.get("name"))
                    elif tag == "id":
                        defined.setdefault("id", set()).add(element.get("name"))
                    elif tag not in ("declare-styleable", "eat-comment"):
                        problems.append(f"{folder}/{name}: <{element.tag}> is not a resource this script knows")
            else:
                defined.setdefault(kind, set()).add(name.split(".")[0])
    for _, path in xml_files():
        for element in ET.parse(path).iter():
            for value in element.attrib.values():
                match = REF.match(value)
                if match and match.group(1) and match.group(3) == "id":
                    defined.setdefault("id", set()).add(match.group(4))
    return defined


def check_references(defined, framework):
    """Every @type/name must exist; framework references are collected for javac."""
    files = [("manifest", MANIFEST)] + list(xml_files())
    for kind, path in files:
        where = os.path.relpath(path, os.path.join(APP, "src", "main"))
        root = ET.parse(path).getroot()
        for element in root.iter():
            tag = element.tag
            if kind == "layout" and tag not in LAYOUT_PSEUDO_TAGS:
                cls = tag if "." in tag else ("android.view." if tag in VIEW_PACKAGE_TAGS else "android.widget.") + tag
                framework.add(f"{cls}.class")
            if kind == "values" and tag == "style":
                parent = element.get("parent")
                if parent:
                    if parent.startswith("android:") or parent.startswith("@android:style/"):
                        framework.add("android.R.style." + java_name(parent.split(":", 1)[1].replace("style/", "")))
                    elif java_name(parent.lstrip("@").replace("style/", "")) not in defined.get("style", set()):
                        problems.append(f"{where}: style parent {parent} is neither in res/ nor the framework")
                for item in element:
                    attr = item.get("name", "")
                    if attr.startswith("android:"):
                        framework.add("android.R.attr." + attr[len("android:"):])
                    else:
                        problems.append(f"{where}: style item {attr} is not an android: attribute (no library defines it)")
                    check_value(where, (item.text or "").strip(), defined, framework)
            for attr, value in element.attrib.items():
                if attr.startswith("{"):
                    namespace, local = attr[1:].split("}")
                    if namespace == ANDROID_NS:
                        framework.add("android.R.attr." + local)
                    elif namespace != TOOLS_NS:
                        problems.append(f"{where}: attribute {local} of {namespace} (no library defines it)")
                    if namespace == TOOLS_NS:
                        continue
                check_value(where, value, defined, framework)


def check_value(where, value, defined, framework):
    match = REF.match(value)
    if match:
        plus, android, kind, name = match.groups()
        if android:
            framework.add(f"android.R.{kind}.{java_name(name)}")
        elif not plus and java_name(name) not in {java_name(n) for n in defined.get(kind, set())}:
            problems.append(f"{where}: {value} is not defined in res/")
        return
    match = THEME_REF.match(value)
    if match:
        if match.group(1):
            framework.add("android.R.attr." + match.group(2))
        else:
            problems.append(f"{where}: {value} names an attribute no library defines")


def gradle_value(key, default):
    with open(GRADLE, encoding="utf-8") as source:
        match = re.search(rf'\b{key}\s*=\s*"?([^"\n]+?)"?\s*$', source.read(), re.M)
    return match.group(1) if match else default


def write(out, name, text):
    folder = os.path.join(out, "org", "otpgate", "client")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "w", encoding="utf-8") as target:
        target.write(text)


def gen(out):
    defined = collect()
    framework = set()
    check_references(defined, framework)
    if problems:
        for problem in problems:
            print(f"res: {problem}", file=sys.stderr)
        sys.exit(1)
    package = gradle_value("namespace", "org.otpgate.client")
    lines = [f"package {package};", "", "/** Generated by scripts/app_resources.py for compile-app.sh; made-up ids. */",
             "public final class R {", "    private R() {}"]
    for type_index, kind in enumerate(sorted(defined), start=1):
        lines.append(f"    public static final class {kind} {{")
        lines.append(f"        private {kind}() {{}}")
        for index, name in enumerate(sorted({java_name(n) for n in defined[kind]})):
            lines.append(f"        public static final int {name} = 0x7f{type_index:02x}{index:04x};")
        lines.append("    }")
    lines.append("}")
    write(out, "R.java", "\n".join(lines) + "\n")
    write(out, "BuildConfig.java", "\n".join([
        f"package {package};", "",
        "/** Generated by scripts/app_resources.py from app/build.gradle.kts. */",
        "public final class BuildConfig {",
        "    private BuildConfig() {}",
        "    public static final boolean DEBUG = true;",
        f'    public static final String APPLICATION_ID = "{gradle_value("applicationId", package)}";',
        '    public static final String BUILD_TYPE = "debug";',
        f'    public static final int VERSION_CODE = {gradle_value("versionCode", "1")};',
        f'    public static final String VERSION_NAME = "{gradle_value("versionName", "0")}";',
        "}", ""]))
    refs = sorted(framework)
    body = ["package org.otpgate.client;", "",
            "/** Generated by scripts/app_resources.py: javac fails here on a framework name res/ uses and Android 15 lacks. */",
            "@SuppressWarnings({\"unused\", \"deprecation\"})", "final class FrameworkRefs {", "    private FrameworkRefs() {}",
            "    static final Object[] USED = {"]
    body += [f"        {ref}," for ref in refs]
    body += ["    };", "}", ""]
    write(out, "FrameworkRefs.java", "\n".join(body))
    print(f"app_resources: R with {sum(len(v) for v in defined.values())} resources, {len(refs)} framework names to check",
          file=sys.stderr)


def manifest(classes):
    root = ET.parse(MANIFEST).getroot()
    package = gradle_value("namespace", "org.otpgate.client")
    missing = []
    for element in root.iter():
        if element.tag not in ("application", "activity", "service", "receiver", "provider", "activity-alias"):
            continue
        name = element.get(f"{{{ANDROID_NS}}}name")
        if not name or element.tag == "activity-alias":
            continue
        full = package + name if name.startswith(".") else name
        if not os.path.exists(os.path.join(classes, *full.split(".")) + ".class"):
            missing.append(f"<{element.tag}> {name}")
    if missing:
        for item in missing:
            print(f"manifest: {item} names a class that was not compiled", file=sys.stderr)
        sys.exit(1)
    print("app_resources: every manifest component was compiled", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "gen":
        gen(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "manifest":
        manifest(sys.argv[2])
    else:
        print(f"usage: {sys.argv[0]} gen OUT_DIR | manifest CLASSES_DIR", file=sys.stderr)
        sys.exit(2)
