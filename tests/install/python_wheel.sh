#!/usr/bin/env bash
# Suite `install`: the Python package as pip builds it from pyproject.toml (meson-python,
# offline): `pip wheel --no-build-isolation` gives a wheel holding the extension and the
# package and nothing of the system install (no librecalign.so: the library is linked into
# the extension; no CLI, headers or .pc); installed into a `venv --system-site-packages`, it
# imports from outside the source tree and computes what NumPy computes; then
# `pip install --no-build-isolation SOURCE` (the other documented command) installs too.
# meson-python's build directory is BUILD_DIR/wheel-build, kept between runs (incremental).
# Nothing is installed outside BUILD_DIR/install-venv.
# Usage: python_wheel.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(realpath "$1")
src=$(realpath "$2")
fail() { echo "FAIL: $*" >&2; exit 1; }
unset LD_LIBRARY_PATH PYTHONPATH

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The venv stays at one path (BUILD_DIR/install-venv, emptied first): meson-python records
# the interpreter in wheel-build and reconfigures incrementally only while it is the same.
venv=$build/install-venv
/usr/bin/python3 -m venv --clear --system-site-packages "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check --no-input)
cfg=(--no-build-isolation --no-deps --no-index
     --config-settings=builddir="$build/wheel-build" --config-settings=compile-args=-j2)
# meson-python 0.12 passes --reconfigure whenever its native file (written into the source
# tree) names the same interpreter as last time, which fails on a build directory that does
# not exist yet (build/ wiped, a first run): without the file it runs a plain setup.
if [ ! -e "$build/wheel-build/meson-private/coredata.dat" ]; then rm -f "$src/.mesonpy-native-file.ini"; fi
cd "$tmp"

"${pip[@]}" wheel "${cfg[@]}" -w "$tmp/wheels" "$src" >"$tmp/wheel.log" 2>&1 \
  || { tail -40 "$tmp/wheel.log"; fail "pip wheel failed"; }
wheel=$(ls "$tmp"/wheels/recalign-*.whl)
/usr/bin/python3 - "$wheel" <<'PY' || fail "the wheel's contents"
import re, sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
def has(pattern): return [n for n in names if re.search(pattern, n)]
assert has(r'(^|/)recalign/_recalign\.cpython-[^/]*\.so$'), names
for f in ('__init__.py', '_order.py', '_signatures.py', 'hooks.py', 'sklearn.py', 'verified.py', '_verified_kinds.py', '_verified_calls.py', '_verified_results.py', '_recalign.pyi', 'py.typed'):
    assert has(r'(^|/)recalign/' + re.escape(f) + '$'), (f, names)
bad = has(r'librecalign|\.pc$|\.hpp$|/scripts/|mesonpy\.libs')
assert not bad, bad
PY
# The library is inside the extension, with its symbols local (nothing to resolve elsewhere).
mkdir "$tmp/unpacked" && (cd "$tmp/unpacked" && /usr/bin/python3 -m zipfile -e "$wheel" .)
ext=$(ls "$tmp"/unpacked/recalign/_recalign*.so)
dynamic=$(readelf -d "$ext"); exported=$(nm -D --defined-only "$ext"); all=$(nm -C "$ext")
! grep -q 'NEEDED.*librecalign' <<<"$dynamic" || fail "the wheel's extension needs a librecalign.so"
! grep -q 'recalign..moment_accumulator' <<<"$exported" || fail "the wheel's extension exports recalign's symbols"
grep -q 'recalign::moment_accumulator::update' <<<"$all" || fail "librecalign is not linked into the extension"

"${pip[@]}" install --no-deps --no-index "$wheel" >"$tmp/install.log" 2>&1 \
  || { cat "$tmp/install.log"; fail "pip install of the wheel failed"; }

check() {  # imports from the venv (cwd: a temporary directory), computes, compares with NumPy
  "$venv/bin/python" - "$venv" <<'PY'
import os, pickle, sys
import numpy as np
import recalign
assert os.path.realpath(recalign.__file__).startswith(os.path.realpath(sys.argv[1])), recalign.__file__
rng = np.random.default_rng(0)
x = rng.normal(size=(300, 8)); y = (x[:, 0] > 0).astype(np.int64)
acc = recalign.MomentAccumulator(8, classes=2)
acc.update(x[:150], y[:150]); acc.update(x[150:], y[150:], first_row=150)
xc = x - x.mean(axis=0)
assert acc.n == 300 and np.allclose(acc.sxx("centered"), xc.T @ xc, rtol=1e-12, atol=1e-9)
again = pickle.loads(pickle.dumps(acc))
assert again.to_bytes() == acc.to_bytes()
curve = recalign.alignment_curve(acc.finish("uncentered")).curve
assert curve.shape == (8,) and np.all(np.isfinite(curve)) and curve[-1] > 0
try:
    acc.update(np.full((2, 8), np.nan))
except ValueError:
    pass
else:
    raise AssertionError("NaN batch accepted")
print("recalign", recalign.__file__, "curve", np.round(curve, 4))
PY
}
check || fail "the installed wheel does not import or compute"

"${pip[@]}" uninstall -y recalign >/dev/null
"${pip[@]}" install "${cfg[@]}" "$src" >"$tmp/install-src.log" 2>&1 \
  || { tail -40 "$tmp/install-src.log"; fail "pip install --no-build-isolation SOURCE failed"; }
check || fail "the package pip installed from the source tree does not import or compute"
