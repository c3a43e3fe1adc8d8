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
#   - Swift: Debian 12 has no Swift toolchain (Debian packages swiftlang
#             from Debian 13 on, built against its newer glibc), so a
#             minimal Debian 13 root is made with debootstrap under
#             $GUICHET_BINDINGS_DEPS/swift-trixie (about 2.7 GB), with
#             swiftlang installed in it; nothing of the host system
#             changes. The test compiles and runs the Swift there (chroot,
#             in a private mount namespace). Override: GUICHET_SWIFT_ROOT.
#   - python3 and a JDK (17) are expected on the machine; installed if missing.
set -euo pipefail

KOTLIN_VERSION=2.4.20
DEPS="${GUICHET_BINDINGS_DEPS:-$HOME/.cache/guichet-bindings}"
KOTLINC="$DEPS/node_modules/kotlin-compiler/bin/kotlinc"
SWIFT_ROOT="${GUICHET_SWIFT_ROOT:-$DEPS/swift-trixie}"
SWIFT_PACKAGES=(swiftlang libc6-dev libstdc++-14-dev)

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need_apt=()
[ -f /usr/share/java/jna.jar ] || need_apt+=(libjna-java)
command -v python3 >/dev/null || need_apt+=(python3)
command -v java >/dev/null || need_apt+=(openjdk-17-jdk-headless)
command -v npm >/dev/null || need_apt+=(npm)
command -v debootstrap >/dev/null || need_apt+=(debootstrap)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "== apt-get install ${need_apt[*]}"
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${need_apt[@]}"
else
    echo "== apt packages present (libjna-java, python3, java, npm, debootstrap)"
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

# The marker is written last: a root left half-made by an interrupted run
# is made again from the start.
if [ ! -f "$SWIFT_ROOT/.guichet-swift-ready" ]; then
    echo "== Debian 13 root with swiftlang into $SWIFT_ROOT"
    rm -rf "$SWIFT_ROOT"
    mkdir -p "$(dirname "$SWIFT_ROOT")"
    debootstrap --variant=minbase trixie "$SWIFT_ROOT" http://deb.debian.org/debian >/dev/null
    cp /etc/resolv.conf "$SWIFT_ROOT/etc/resolv.conf"
    chroot "$SWIFT_ROOT" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive chroot "$SWIFT_ROOT" \
        apt-get install -y -qq --no-install-recommends "${SWIFT_PACKAGES[@]}" >/dev/null
    chroot "$SWIFT_ROOT" apt-get clean
    touch "$SWIFT_ROOT/.guichet-swift-ready"
else
    echo "== Swift root present in $SWIFT_ROOT"
fi
mkdir -p "$SWIFT_ROOT/guichet-work"
# swiftc finds its libraries through /proc/self/exe: a private /proc.
unshare --mount --fork /bin/sh -c 'mount -t proc proc "$1/proc" && chroot "$1" /usr/libexec/swift/bin/swiftc --version' sh "$SWIFT_ROOT" 2>&1 | head -n 1
echo "swift root: $SWIFT_ROOT (the test reads GUICHET_SWIFT_ROOT, defaulting to this path)"
