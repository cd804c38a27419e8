#!/usr/bin/env bash
# README command 1: install what is missing, build, and run the main job on the default
# data set (the 60,000 Fashion-MNIST training images): `recalign align`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
exec build/tools/recalign/recalign align "$@"
