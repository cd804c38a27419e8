#!/usr/bin/env bash
# README command 1: install what is missing, build, and run the main job on the default
# data set (the 60,000 Fashion-MNIST training images): `recalign align`.
set -euo pipefail
cd "$(dirname "$0")/.."
# Setup and build report on stderr: stdout is recalign's alone (`main.sh --json > f.json`).
bash scripts/setup.sh >&2
bash scripts/build.sh >&2
exec build/tools/recalign/recalign align "$@"
