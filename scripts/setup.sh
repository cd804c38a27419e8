#!/usr/bin/env bash
# Installs every Debian 12 package recalign needs to build, test and run on the default
# data set. Idempotent: when everything is present it touches nothing (no apt-get update).
# Run as root (or with sudo available).
set -euo pipefail

packages=(
  # build
  build-essential meson ninja-build pkg-config cmake
  libxtensor-dev libxtensor-blas-dev libopenblas-dev liblapacke-dev libcereal-dev
  zlib1g-dev libcli11-dev nlohmann-json3-dev libpng-dev
  # image decoding (libjpeg API of libjpeg-turbo, as PIL uses it); PIL and torchvision are the tests' oracles
  libjpeg62-turbo-dev python3-pil python3-torchvision
  # tests and oracles
  catch2 python3 python3-numpy python3-sklearn python3-pytest time
  # the figures report checked in a real browser, its vector files parsed (tests/cli/test_figures.py)
  chromium python3-pil libxml2-utils
  # charts
  gnuplot-nox
  # distributed runs (meson option mpi)
  libopenmpi-dev openmpi-bin
  # python bindings
  python3-dev pybind11-dev python3-torch
  # packaging: pip install / pip wheel from pyproject.toml, offline (suite install)
  python3-mesonpy python3-venv python3-pip
  # default data set
  dataset-fashion-mnist
)
packages+=(${RECALIGN_EXTRA_PACKAGES:-})

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi
echo "setup: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
