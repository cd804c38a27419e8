#!/usr/bin/env bash
# Configures (once) and builds recalign in ./build (release).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f build/build.ninja ]; then
  meson setup build --buildtype=release "$@"
fi
ninja -C build
