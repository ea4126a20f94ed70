#!/usr/bin/env bash
# Installs the OpenID Connect provider the sign-in tests run against (oauth2-mock-server, pinned
# by package-lock.json) into tests/oidc/node_modules. Called by .ci/run, and by the test harness
# when it is missing, so `cargo test` works on a fresh machine with Node.js, npm and the npm
# registry. Fails, never skips, when it cannot.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
    apt-get update -qq && apt-get install -y -qq nodejs npm
  else
    echo "FAIL: the sign-in tests need Node.js and npm (for oauth2-mock-server)" >&2
    exit 1
  fi
fi
npm ci --no-audit --no-fund --loglevel=error
node -e "import('oauth2-mock-server').then(() => console.log('oauth2-mock-server ready'))"
