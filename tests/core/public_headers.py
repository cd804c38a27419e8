"""No public header pulls in cereal (issue 12): payload code is compiled inside the library
(lib/<part>/<name>_serial.cpp), so a program that includes recalign's headers compiles
none of cereal. cereal lives in /usr/include, where it cannot be taken off the include
path, so each header's include graph is listed by the compiler itself (-M) and searched
for a cereal file, however indirectly it is reached.

usage: public_headers.py INCLUDE_DIR COMPILER...
"""
import os
import re
import subprocess
import sys
import tempfile

include_dir = sys.argv[1]
compiler = sys.argv[2:]
cereal_file = re.compile(r"(^|/)cereal/")


def included_files(header):
    # -MG: a header missing here (mpi.h without MPI) is listed instead of failing; nothing
    # it would include can be cereal's, since it is not one of ours.
    out = subprocess.run(compiler + ["-std=c++17", "-x", "c++", "-M", "-MG", "-I", include_dir, header],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"FAIL: cannot list the includes of {header}:\n{out.stderr}")
    return out.stdout.replace("\\\n", " ").split(":", 1)[1].split()


# The detector itself: a header that includes cereal (here, indirectly) is caught.
with tempfile.TemporaryDirectory() as tmp:
    inner = os.path.join(tmp, "inner.hpp")
    outer = os.path.join(tmp, "outer.hpp")
    with open(inner, "w") as f:
        f.write("#include <cereal/archives/portable_binary.hpp>\n")
    with open(outer, "w") as f:
        f.write('#include "inner.hpp"\n')
    if not any(cereal_file.search(p) for p in included_files(outer)):
        sys.exit("FAIL: the check does not see cereal included through another header")

headers = sorted(os.path.join(root, name)
                 for root, _, names in os.walk(os.path.join(include_dir, "recalign"))
                 for name in names if name.endswith(".hpp"))
if len(headers) < 10:
    sys.exit(f"FAIL: only {len(headers)} public headers found under {include_dir}")
bad = {}
for h in headers:
    hits = [p for p in included_files(h) if cereal_file.search(p)]
    if hits:
        bad[os.path.relpath(h, include_dir)] = hits[0]
for h, first in bad.items():
    print(f"FAIL: {h} includes cereal ({first})")
if bad:
    sys.exit(1)
print(f"{len(headers)} public headers, none includes cereal")
