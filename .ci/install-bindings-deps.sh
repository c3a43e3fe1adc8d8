#!/usr/bin/env bash
# Installs what the foreign-language binding tests of mobile-bindings/ need
# (mobile-bindings/tests/foreign.rs): JNA for Kotlin on the JVM, and the
# Kotlin compiler. Idempotent: run it as often as you like.
#
#   - JNA:    Debian package libjna-java -> /usr/share/java/jna.jar
#   - Kotlin: npm package kotlin-compiler@2.4.20, installed under
#             $GUICHET_BINDINGS_DEPS (default ~/.cache/guichet-bindings, outside
#             the repository, so nothing to ignore and `cargo clean` keeps it):
#             $GUICHET_BINDINGS_DEPS/node_modules/kotlin-compiler/bin/kotlinc
#             The test looks there, or wherever GUICHET_KOTLINC points.
#   - python3 and a JDK (17) are expected on the machine; installed if missing.
set -euo pipefail

KOTLIN_VERSION=2.4.20
DEPS="${GUICHET_BINDINGS_DEPS:-$HOME/.cache/guichet-bindings}"
KOTLINC="$DEPS/node_modules/kotlin-compiler/bin/kotlinc"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need_apt=()
[ -f /usr/share/java/jna.jar ] || need_apt+=(libjna-java)
command -v python3 >/dev/null || need_apt+=(python3)
command -v java >/dev/null || need_apt+=(openjdk-17-jdk-headless)
command -v npm >/dev/null || need_apt+=(npm)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "== apt-get install ${need_apt[*]}"
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${need_apt[@]}"
else
    echo "== apt packages present (libjna-java, python3, java, npm)"
fi

installed=""
if [ -f "$DEPS/node_modules/kotlin-compiler/package.json" ]; then
    installed="$(node -p "require('$DEPS/node_modules/kotlin-compiler/package.json').version" 2>/dev/null || true)"
fi
if [ "$installed" != "$KOTLIN_VERSION" ]; then
    echo "== npm install kotlin-compiler@$KOTLIN_VERSION into $DEPS"
    mkdir -p "$DEPS"
    npm install --prefix "$DEPS" --no-audit --no-fund "kotlin-compiler@$KOTLIN_VERSION"
else
    echo "== kotlin-compiler $KOTLIN_VERSION present in $DEPS"
fi
chmod +x "$DEPS"/node_modules/kotlin-compiler/bin/*

"$KOTLINC" -version 2>&1 | tail -n 1
echo "kotlinc: $KOTLINC (the test reads GUICHET_KOTLINC, defaulting to this path)"
