#!/usr/bin/env bash
# Suite `install`: what `meson install` gives a C++ or Python user, checked on a DESTDIR-staged
# install of this build tree (nothing is written outside a temporary directory):
#  * the installed `recalign` runs with no LD_LIBRARY_PATH and no ldconfig, and the loader
#    takes librecalign from the staged tree (its RUNPATH, not a copy installed elsewhere);
#  * SONAME librecalign.so.<soversion>;
#  * `pkg-config --cflags --libs recalign` (and recalign_mpi) resolve, and examples/downstream,
#    a meson project of its own, builds against them and runs;
#  * the Python package lands in a site directory /usr/bin/python3 searches, and imports from
#    the staged tree with its extension loading the staged librecalign.
# Usage: meson_install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(realpath "$1")
src=$(realpath "$2")
fail() { echo "FAIL: $*" >&2; exit 1; }
unset LD_LIBRARY_PATH

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
info=$(meson introspect "$build" --buildoptions | /usr/bin/python3 -c '
import json, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
print(o["prefix"]); print(o["libdir"]); print(o["bindir"])')
prefix=$(sed -n 1p <<<"$info"); libdir=$(sed -n 2p <<<"$info"); bindir=$(sed -n 3p <<<"$info")
if [ "$prefix" = /usr ]; then
  echo "SKIP: prefix /usr installs into the loader's own directory, nothing to test staged"; exit 77
fi
[[ $libdir = /* ]] || libdir=$prefix/$libdir
[[ $bindir = /* ]] || bindir=$prefix/$bindir
version=$(meson introspect "$build" --projectinfo | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')

stage=$tmp/stage
meson install -C "$build" --no-rebuild --quiet --destdir "$stage" >/dev/null
P=$stage$prefix; L=$stage$libdir; B=$stage$bindir

# SONAME and the files a linker and a loader look for.
soname=$(readelf -d "$L/librecalign.so" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[[ $soname =~ ^librecalign\.so\.[0-9]+(\.[0-9]+)?$ ]] || fail "SONAME of librecalign.so is '$soname'"
[ -e "$L/$soname" ] || fail "$soname is not installed in $L"

# The CLI: its RUNPATH must lead the loader to the staged library (a copy in /usr/local
# from an earlier real install must not be what makes it run).
readelf -d "$B/recalign" | grep -q 'RUNPATH.*\$ORIGIN' || fail "installed recalign has no \$ORIGIN RUNPATH"
resolved=$(ldd "$B/recalign" | awk -v s="$soname" '$1 == s { print $3 }')
[ "$(realpath -m "$resolved")" = "$(realpath "$L/$soname")" ] \
  || fail "installed recalign loads $soname from '$resolved', not from the install ($L)"
out=$("$B/recalign" --version) || fail "installed recalign --version failed"
[ "$out" = "recalign $version" ] || fail "recalign --version printed '$out'"
"$B/recalign" align --limit 500 --json >"$tmp/align.json" || fail "installed recalign align failed"
/usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
a = r["alignment"]
assert r["n"] == 500 and r["d"] == 784 and len(a) == 784 and 0 < a[-1], (r["n"], r["d"])' "$tmp/align.json" \
  || fail "recalign align --limit 500 --json gave an unexpected document"

# pkg-config. The .pc files are relocatable (prefix from ${pcfiledir}) in a build configured
# with this project's defaults; a build dir from before that keeps an absolute prefix, for
# which the staging directory is the sysroot.
export PKG_CONFIG_PATH=$L/pkgconfig
if ! grep -q '^prefix=${pcfiledir}' "$L/pkgconfig/recalign.pc"; then export PKG_CONFIG_SYSROOT_DIR=$stage; fi
flags=$(pkg-config --cflags --libs recalign) || fail "pkg-config --cflags --libs recalign failed"
# -I and -L as normalised paths (a relocatable .pc gives .../pkgconfig/../../../include).
norm=" "; for f in $flags; do case $f in -I*|-L*) norm+="${f:0:2}$(realpath -m "${f:2}") ";; *) norm+="$f ";; esac; done
[[ $norm == *" -I$(realpath "$P/include") "* && $norm == *" -L$(realpath "$L") "* && $norm == *" -lrecalign "* ]] \
  || fail "pkg-config recalign gave '$flags'"
[ "$(pkg-config --modversion recalign)" = "$version" ] || fail "recalign.pc has another version"
if [ -e "$L/librecalign_mpi.so" ]; then
  mflags=$(pkg-config --cflags --libs recalign_mpi) || fail "pkg-config --cflags --libs recalign_mpi failed"
  [[ $mflags == *-DRECALIGN_HAVE_MPI* && $mflags == *-lrecalign_mpi* && $mflags == *-lrecalign* && $mflags == *-lmpi* ]] \
    || fail "pkg-config recalign_mpi gave '$mflags'"
fi

# examples/downstream: configured, built and run as a separate project.
meson setup "$tmp/downstream" "$src/examples/downstream" >"$tmp/setup.log" 2>&1 \
  || { cat "$tmp/setup.log"; fail "examples/downstream does not configure against the install"; }
ninja -C "$tmp/downstream" >"$tmp/ninja.log" 2>&1 || { cat "$tmp/ninja.log"; fail "examples/downstream does not build"; }
resolved=$(ldd "$tmp/downstream/downstream" | awk -v s="$soname" '$1 == s { print $3 }')
[ "$(realpath -m "$resolved")" = "$(realpath "$L/$soname")" ] || fail "downstream loads $soname from '$resolved'"
"$tmp/downstream/downstream" >"$tmp/downstream.out" || { cat "$tmp/downstream.out"; fail "downstream failed"; }

# Python: the directory meson installs the package into is one /usr/bin/python3 searches for
# this prefix, and the staged copy imports (its extension finding the staged librecalign).
if [ -d "$build/python/recalign" ]; then
  init=$(meson introspect "$build" --installed | /usr/bin/python3 -c '
import json, sys
print(next(d for s, d in json.load(sys.stdin).items() if s.endswith("python/recalign/__init__.py")))')
  site=$(dirname "$(dirname "$init")")
  case "$prefix" in
    /usr/local) /usr/bin/python3 -c 'import site, sys; sys.exit(sys.argv[1] not in site.getsitepackages())' "$site" \
                  || fail "meson installs the package in $site, which /usr/bin/python3 does not search" ;;
  esac
  ext=$(ls "$stage$site"/recalign/_recalign*.so)
  resolved=$(ldd "$ext" | awk -v s="$soname" '$1 == s { print $3 }')
  [ "$(realpath -m "$resolved")" = "$(realpath "$L/$soname")" ] || fail "the staged extension loads $soname from '$resolved'"
  (cd "$tmp" && PYTHONPATH=$stage$site /usr/bin/python3 -c '
import os, sys, numpy as np, recalign
assert recalign.__file__.startswith(sys.argv[1]), recalign.__file__
acc = recalign.MomentAccumulator(4, classes=2)
acc.update(np.arange(40, dtype=np.float64).reshape(10, 4) % 7, np.arange(10) % 2)
assert acc.n == 10' "$stage$site") || fail "the staged Python package does not import and run"
fi
echo "meson install: CLI, SONAME $soname, pkg-config, examples/downstream and the Python package OK ($prefix staged)"
