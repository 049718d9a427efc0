#!/usr/bin/env bash
# README command 2: installs dependencies, builds, and runs the whole test suite with ctest.
# Shared assets (models, data) are read from $LOWBIT_SHARED, default ../shared beside the repo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
export LOWBIT_SHARED="${LOWBIT_SHARED:-$(cd .. && pwd)/shared}"
ctest --test-dir build --output-on-failure -j"$(nproc)" "$@"
