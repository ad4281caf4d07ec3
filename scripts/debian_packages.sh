#!/usr/bin/env bash
# Installs the Debian packages the test suite's native tools need, only when they are missing.
#
# AzCopy 10.32.2 (from the @azure-tools/azcopy-linux npm package) links against libsecret-1.so.0,
# which Debian ships as libsecret-1-0. The package index is refreshed only when the plain install
# fails (a fresh machine's lists may be stale or empty). Runs apt-get through sudo when not root.
# When it cannot install, it prints one line saying why and still exits 0: the rest of the suite
# runs, and the AzCopy tests then fail with their own message naming the library.
set -uo pipefail

LIBRARY=libsecret-1.so.0
PACKAGE=libsecret-1-0

have_library() {
    ldconfig -p 2>/dev/null | grep -q "$LIBRARY"
}

if have_library; then
    exit 0
fi

fail() {
    echo "debian_packages: cannot install $PACKAGE ($LIBRARY, needed by AzCopy in the tests): $1;" \
        "install it by hand: apt-get install $PACKAGE" >&2
    exit 0
}

if ! command -v apt-get >/dev/null 2>&1; then
    fail "apt-get not found (not a Debian-based system)"
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        fail "not root and sudo not found"
    fi
fi

export DEBIAN_FRONTEND=noninteractive
OUTPUT=""
install() {
    OUTPUT=$("${SUDO[@]}" apt-get install -y -q --no-install-recommends "$PACKAGE" 2>&1)
}

echo "debian_packages: installing $PACKAGE ($LIBRARY, needed by AzCopy in the tests)"
if ! install; then
    OUTPUT=$("${SUDO[@]}" apt-get update -q 2>&1) || fail "apt-get update failed: $(tail -n 1 <<<"$OUTPUT")"
    install || fail "apt-get install failed: $(tail -n 1 <<<"$OUTPUT")"
fi
have_library || fail "installed, but ldconfig still does not list $LIBRARY"
