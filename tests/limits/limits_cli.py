"""Limits through the CLI (issue 8): a file whose header claims 2^40 elements or more -- an
.npy of shape (2^20, 2^20) or (2^40,) float64, IDX dimensions, a raw --raw-shape, a
checkpoint's dimension or payload size -- is refused before allocation: exit status 2, one
line on stderr naming the file, and a peak RSS of the recalign process under 50 MB.

Each case runs recalign in a fresh process and reads its own peak RSS (see run()). Under AddressSanitizer (tests/SANITIZERS.md) the runtime's shadow memory and
quarantine add to every process's RSS whatever it does, so there the bound is 50 MB above
the peak of `recalign --version` in the same build.

Sparse files stand in for files that really hold 2^40 values: they cost no disk."""
import gzip
import os
import struct
import subprocess
import sys
import tempfile
import zlib

exe = os.path.abspath(sys.argv[1])
tmp = tempfile.mkdtemp(prefix="recalign-limits-cli-")
LIMIT_KB = 50 * 1024
failures = []


# Peak RSS of the recalign process alone. A child forked (or vforked) from this Python
# process starts with Python's resident pages counted in its high-water mark, so the
# measuring parent must be small: /usr/bin/time (package `time`, scripts/setup.sh), or
# else a fresh `python3 -S -I` per case that forks, execs recalign and reads
# RUSAGE_CHILDREN (tests/cli/cli_common.py's peak_rss_run; then the bound includes that
# interpreter's few MB: conservative).
TIME = "/usr/bin/time"
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
from cli_common import peak_rss_run  # noqa: E402


def run(args):
    """(exit status, stderr of recalign, its peak RSS in KiB), from a fresh process."""
    if os.access(TIME, os.X_OK):
        with tempfile.NamedTemporaryFile(mode="r") as rss:
            p = subprocess.run([TIME, "-f", "%M", "-o", rss.name, exe] + args,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            return p.returncode, p.stderr.decode("utf-8", "replace"), int(rss.read().split()[-1])
    rc, _, err, kb = peak_rss_run(exe, args)
    return rc, err, kb


with open(exe, "rb") as f:
    sanitized = b"__asan_init" in f.read()
rc, _, base_kb = run(["--version"])
assert rc == 0, "recalign --version failed"
limit_kb = base_kb + LIMIT_KB if sanitized else LIMIT_KB
print(f"recalign --version peak RSS {base_kb} KiB; limit {limit_kb} KiB{' (sanitized build)' if sanitized else ''}")


def expect_refused(what, args, fragments):
    rc, err, kb = run(args)
    lines = [l for l in err.splitlines() if l.strip()]
    problems = []
    if rc != 2:
        problems.append(f"exit status {rc}, expected 2")
    if len(lines) != 1:
        problems.append(f"{len(lines)} lines on stderr, expected one")
    for frag in fragments:
        if frag not in err:
            problems.append(f"stderr lacks {frag!r}")
    if kb >= limit_kb:
        problems.append(f"peak RSS {kb} KiB >= {limit_kb} KiB")
    status = "ok  " if not problems else "FAIL"
    print(f"{status} {what}: exit {rc}, peak RSS {kb} KiB: {err.strip()[:200]}")
    for p in problems:
        print(f"     {p}")
    if problems:
        failures.append(what)


def path(name):
    return os.path.join(tmp, name)


def npy(name, descr, shape, sparse_full=False):
    """Header of a version 1.0 .npy; with sparse_full the file is extended (as a hole) to
    the size the header announces, so that it really holds the claimed elements."""
    dict_text = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    h = dict_text.encode("latin1")
    h += b" " * (64 - (10 + len(h) + 1) % 64) + b"\n"
    p = path(name)
    with open(p, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h)
    if sparse_full:
        n = 1
        for d in eval(shape):
            n *= d
        os.truncate(p, 10 + len(h) + n * int(descr[2:]))
    return p


def idx(name, type_code, dims, gz=False):
    data = bytes([0, 0, type_code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    p = path(name)
    if gz:
        with gzip.open(p, "wb") as f:
            f.write(data + bytes(64))
    else:
        with open(p, "wb") as f:
            f.write(data)
    return p


def checkpoint(name, kind, dim, payload_bytes, payload=b""):
    """A 64-byte recalign checkpoint header with valid checksums (lib/core/serial.cpp)."""
    h = bytearray(64)
    h[0:8] = b"RECALIGN"
    struct.pack_into("<IIII", h, 8, 1, 0x01020304, kind, 8)
    struct.pack_into("<QQQQ", h, 24, dim, 0, 0, payload_bytes)
    struct.pack_into("<I", h, 56, zlib.crc32(payload))
    struct.pack_into("<I", h, 60, zlib.crc32(bytes(h[:60])))
    p = path(name)
    with open(p, "wb") as f:
        f.write(bytes(h) + payload)
    return p


E40 = 2**40

# --- .npy
p = npy("square.npy", "<f8", "(1048576, 1048576)")
expect_refused(".npy (2^20, 2^20) float64, header only", ["align", "--images", p], [p, "truncated"])
p = npy("flat.npy", "<f8", "(1099511627776,)")
expect_refused(".npy (2^40,) float64, header only", ["spectrum", "--images", p], [p, "truncated"])
p = npy("wraps.npy", "<f8", "(4294967297, 4294967297)")
expect_refused(".npy (2^32 + 1)^2 elements", ["spectrum", "--images", p], [p, "overflows"])
p = npy("square_full.npy", "<f8", "(1048576, 1048576)", sparse_full=True)
expect_refused(".npy (2^20, 2^20) float64, 8 TiB sparse file", ["align", "--images", p],
               [p, "--method exact", "GiB"])

# --- IDX
p = idx("square.idx", 0x08, [2**20, 2**20])
expect_refused("IDX 2^20 x 2^20 uint8, header only", ["spectrum", "--images", p], [p, "announces"])
p = idx("wraps.idx", 0x08, [2**32 - 1, 2**32 - 1, 2**32 - 1])
expect_refused("IDX (2^32 - 1)^3 elements", ["spectrum", "--images", p], [p, "overflows"])
p = idx("square.idx.gz", 0x08, [2**20, 2**20], gz=True)
expect_refused("IDX .gz 2^20 x 2^20 in 60 bytes", ["spectrum", "--images", p], [p, "gzip"])

# --- raw
small = path("small.raw")
with open(small, "wb") as f:
    f.write(bytes(4096))
expect_refused("raw --raw-shape 2^20,2^20 f8 on 4 KiB",
               ["spectrum", "--images", small, "--raw-shape", "1048576,1048576", "--raw-dtype", "f8"],
               [small, "8796093022208 bytes"])
expect_refused("raw --raw-shape 2^40,2^30 f8 (N x D x 8 > 2^64)",
               ["spectrum", "--images", small, "--raw-shape", f"{E40},{2**30}", "--raw-dtype", "f8"],
               [small, "overflows"])
full = path("full.raw")
with open(full, "wb") as f:
    f.truncate(E40)  # 2^40 bytes, a hole
expect_refused("raw --raw-shape 2^20,2^20 u8 on a 1 TiB sparse file",
               ["spectrum", "--images", full, "--raw-shape", "1048576,1048576", "--raw-dtype", "u8"],
               [full, "--method exact", "GiB"])

# --- checkpoints (kind 1 = moments, 6 = a CLI run)
p = checkpoint("payload.ckpt", 1, 4, E40)
expect_refused("checkpoint announcing a 1 TiB payload, info", ["info", p], [p, "truncated"])
expect_refused("checkpoint announcing a 1 TiB payload, --from", ["spectrum", "--from", p], [p, "truncated"])
p = checkpoint("run.ckpt", 6, 4, E40)
expect_refused("CLI-run checkpoint announcing a 1 TiB payload, info", ["info", p], [p, "truncated"])
p = checkpoint("dim.ckpt", 1, E40, 0)
expect_refused("checkpoint announcing D = 2^40, info", ["info", p], [p, "absurd dimension"])
p = checkpoint("over.ckpt", 1, 4, 2**50)
expect_refused("checkpoint announcing a 2^50-byte payload, info", ["info", p], [p, "absurd payload"])
# A payload whose own fields claim D = C = 2^31: (D + C)^2 overflows 64 bits.
payload = b"\x01" + struct.pack("<QBQBQ", 2**31, 1, 2**31, 0, 5)
p = checkpoint("state.ckpt", 1, 2**31, len(payload), payload)
expect_refused("moment checkpoint whose payload claims (2^31 + 2^31)^2", ["spectrum", "--from", p], [p, "overflows"])

for name in os.listdir(tmp):
    os.remove(os.path.join(tmp, name))
os.rmdir(tmp)
if failures:
    print(f"{len(failures)} case(s) failed: {failures}")
    sys.exit(1)
print("all cases refused cleanly")
