#!/usr/bin/env bash
# Installs the Debian 12 packages lowbit builds and tests with. Idempotent and quick when
# everything is already there (it asks dpkg first and runs apt-get only for what is missing).
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  clang libclang-rt-14-dev   # the sanitizer + libFuzzer build (scripts/build-san.sh)
  libopenblas-dev liblapacke-dev
  nlohmann-json3-dev libcli11-dev libfmt-dev
  libsentencepiece-dev libpcre2-dev
  libgtest-dev libbenchmark-dev
  libcpp-httplib-dev
  libbz2-dev
  gnuplot-nox
  chromium
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js runs the OpenAI SDK end-to-end test of `lowbit serve`; Debian's own when there is none.
command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages the tests use, pinned by package-lock.json, installed beside it (not global).
sdk="$(cd "$(dirname "$0")/.." && pwd)/tests/serve/sdk"
if [ ! -d "$sdk/node_modules/openai" ]; then
  echo "install-deps: npm ci in tests/serve/sdk" >&2
  (cd "$sdk" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
