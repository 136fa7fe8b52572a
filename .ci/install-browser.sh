#!/usr/bin/env bash
# What the browser test (crates/cli/tests/browser.rs) needs: Debian's Chromium and the pinned
# node packages of web/ (playwright-core drives the browser). Failure is tolerated: without
# them the browser test reports SKIPPED, loudly, and the rest of the suite runs.
set -uo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null \
            || echo "install-browser: could not install chromium; the browser test will be skipped" >&2
    else
        echo "install-browser: no apt-get; the browser test will be skipped" >&2
    fi
fi
if command -v npm >/dev/null 2>&1; then
    (cd web && npm ci --no-audit --no-fund --loglevel=error) \
        || echo "install-browser: npm ci failed in web/; the browser test will be skipped" >&2
else
    echo "install-browser: no npm; the browser test will be skipped" >&2
fi
exit 0
