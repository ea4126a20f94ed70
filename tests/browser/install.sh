#!/usr/bin/env bash
# Installs what the browser tests (tests/browser) drive: Debian's Chromium and its chromedriver,
# and axe-core (pinned by package-lock.json) into tests/browser/node_modules. Called by .ci/run
# before `cargo test`; the tests fail, never skip, when any of it is missing.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
    apt-get update -qq && apt-get install -y -qq chromium chromium-driver
  else
    echo "FAIL: the browser tests need chromium and chromedriver (apt-get install chromium chromium-driver)" >&2
    exit 1
  fi
fi
if ! command -v npm >/dev/null; then
  if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
    apt-get update -qq && apt-get install -y -qq nodejs npm
  else
    echo "FAIL: the browser tests need npm (for axe-core)" >&2
    exit 1
  fi
fi
npm ci --no-audit --no-fund --loglevel=error
test -f node_modules/axe-core/axe.min.js
chromium --version
chromedriver --version
