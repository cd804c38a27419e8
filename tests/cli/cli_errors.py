"""User errors: truncated files, wrong magic, absurd dimensions, bad values and bad options
exit with status 2 and one line on stderr naming the file and the byte offset or row, and
without a large allocation (max RSS of the process is measured with wait4). Also --help on
every command, and bounded memory on an input much larger than the batch."""
import gzip
import os
import struct

import numpy as np

import cli_common as c

tmp = c.init()
rng = np.random.default_rng(1)
N, D = 200, 10
X = rng.normal(size=(N, D))
Y = rng.integers(0, 3, size=N)
good = os.path.join(tmp, "good.npy")
c.write_npy(good, X)
labels = os.path.join(tmp, "labels.npy")
c.write_npy(labels, Y.astype("<i8"))
RSS_LIMIT_KB = 150 * 1024  # a rejected absurd header must not allocate: far below the claims


def expect_error(args, expect_in, what, rss=True):
    rc, out, err, kb = c.run_rss(args)
    c.one_line_error(rc, err, expect_in, what)
    if rss:
        c.check(kb < RSS_LIMIT_KB, f"{what}: max RSS {kb} KiB")


raw = open(good, "rb").read()

# --- .npy
p = os.path.join(tmp, "magic.npy")
open(p, "wb").write(b"\x93NUMPX" + raw[6:])
expect_error(["spectrum", "--images", p, "--format", "npy"], [p, "byte offset 0", "magic"], "npy wrong magic")
p = os.path.join(tmp, "trunc_data.npy")
open(p, "wb").write(raw[:-37])
expect_error(["spectrum", "--images", p], [p, "byte offset", "truncated"], "npy truncated data")
p = os.path.join(tmp, "trunc_header.npy")
open(p, "wb").write(raw[:40])
expect_error(["spectrum", "--images", p], [p, "byte offset", "truncated"], "npy truncated header")
p = os.path.join(tmp, "tiny.npy")
open(p, "wb").write(raw[:5])
expect_error(["spectrum", "--images", p, "--format", "npy"], [p, "byte offset"], "npy 5 bytes")


def npy_with_header(path, header, version=1, data=b""):
    h = header.encode("latin1")
    pad = 64 - (10 + len(h) + 1) % 64
    h = h + b" " * pad + b"\n"
    pre = b"\x93NUMPY" + bytes([version, 0]) + (struct.pack("<H", len(h)) if version == 1 else struct.pack("<I", len(h)))
    open(path, "wb").write(pre + h + data)


p = os.path.join(tmp, "absurd.npy")
npy_with_header(p, "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000, 1000000), }", data=b"\0" * 800)
expect_error(["spectrum", "--images", p], [p, "byte offset"], "npy absurd shape (overflow)")
p = os.path.join(tmp, "big.npy")
npy_with_header(p, "{'descr': '<f8', 'fortran_order': False, 'shape': (4000000000, 784), }", data=b"\0" * 800)
expect_error(["spectrum", "--images", p], [p, "byte offset", "truncated"], "npy header claims 25 TB")
p = os.path.join(tmp, "hdrlen.npy")
open(p, "wb").write(b"\x93NUMPY\x02\x00" + struct.pack("<I", 0xFFFFFFF0) + b"{}")
expect_error(["spectrum", "--images", p], [p, "byte offset 8", "header length"], "npy absurd header length")
p = os.path.join(tmp, "version.npy")
open(p, "wb").write(b"\x93NUMPY\x07\x00" + raw[8:])
expect_error(["spectrum", "--images", p], [p, "byte offset 6", "version"], "npy version 7")
p = os.path.join(tmp, "descr.npy")
npy_with_header(p, "{'descr': '<c16', 'fortran_order': False, 'shape': (2, 2), }", data=b"\0" * 64)
expect_error(["spectrum", "--images", p], [p, "c16"], "npy complex dtype")
p = os.path.join(tmp, "record.npy")
npy_with_header(p, "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (2,), }", data=b"\0" * 16)
expect_error(["spectrum", "--images", p], [p, "structured"], "npy structured dtype")
p = os.path.join(tmp, "garbage.npy")
npy_with_header(p, "{'descr': '<f8', 'fortran_order': Maybe, 'shape': (2, 2), }", data=b"\0" * 32)
expect_error(["spectrum", "--images", p], [p, "byte offset", "fortran_order"], "npy malformed header")

# --- IDX
xi = os.path.join(tmp, "x.idx")
c.write_idx(xi, (np.abs(X) * 10).astype(np.uint8))
idx = open(xi, "rb").read()
p = os.path.join(tmp, "trunc.idx")
open(p, "wb").write(idx[:-10])
expect_error(["spectrum", "--images", p], [p, "byte offset"], "IDX truncated")
p = os.path.join(tmp, "absurd.idx")
open(p, "wb").write(struct.pack(">BBBBIII", 0, 0, 0x0E, 3, 0xFFFFFFFF, 0xFFFF, 0xFFFF) + b"\0" * 100)
expect_error(["spectrum", "--images", p], [p, "byte offset"], "IDX absurd dims")
p = os.path.join(tmp, "type.idx")
open(p, "wb").write(b"\0\0\x07\x02" + idx[4:])
expect_error(["spectrum", "--images", p, "--format", "idx"], [p, "byte offset 2"], "IDX unknown type")
p = os.path.join(tmp, "trunc.idx.gz")
open(p, "wb").write(gzip.compress(idx)[:-30])
expect_error(["spectrum", "--images", p], [p, "byte offset"], "IDX .gz truncated")
p = os.path.join(tmp, "absurd.idx.gz")
open(p, "wb").write(gzip.compress(struct.pack(">BBBBII", 0, 0, 0x08, 2, 5, 1 << 30) + b"\0" * 1000))
expect_error(["spectrum", "--images", p], [p, "byte offset", "gzip"], "IDX .gz announcing 5 GiB")
p = os.path.join(tmp, "wide.npy")
npy_with_header(p, "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 200000), }", data=b"\1" * 200000)
expect_error(["spectrum", "--images", p], ["--method exact", "GiB", "--method fd"], "D too large for the exact route")
p = os.path.join(tmp, "unknown.bin")
open(p, "wb").write(b"hello world, not a data file")
expect_error(["spectrum", "--images", p], [p, "byte offset 0", "--format raw"], "unknown format")

# --- raw
p = os.path.join(tmp, "x.raw")
X.astype("<f8").tofile(p)
expect_error(["spectrum", "--images", p, "--raw-shape", "201,10", "--raw-dtype", "f8"], [p, "bytes"], "raw too short")
expect_error(["spectrum", "--images", p, "--raw-shape", "0,7", "--raw-dtype", "f8"], [p, "whole number of rows"],
             "raw width not dividing")
expect_error(["spectrum", "--images", p, "--raw-shape", "4611686018427387904,1000", "--raw-dtype", "f8"], [p],
             "raw absurd rows")

# --- values and labels: the row is named
bad = X.copy()
bad[137, 4] = np.nan
p = os.path.join(tmp, "nan.npy")
c.write_npy(p, bad)
expect_error(["spectrum", "--images", p, "--batch", "50"], [p, "row 137"], "NaN in row 137")
expect_error(["align", "--images", good, "--labels", labels, "--classes", "2"], ["row", labels], "label out of range")
yneg = Y.copy()
yneg[42] = -1
p = os.path.join(tmp, "neg.npy")
c.write_npy(p, yneg.astype("<i4"))
expect_error(["align", "--images", good, "--labels", p], [p, "row 42"], "negative label")
p = os.path.join(tmp, "short_labels.npy")
c.write_npy(p, Y[:150].astype("<i4"))
expect_error(["align", "--images", good, "--labels", p], [p, "150", "200"], "label count mismatch")
p = os.path.join(tmp, "float_labels.npy")
c.write_npy(p, Y.astype("<f4"))
expect_error(["align", "--images", good, "--labels", p], [p, "integer"], "float labels")

# --- options
expect_error(["spectrum", "--images", os.path.join(tmp, "missing.npy")], ["missing.npy", "cannot open"], "missing file")
expect_error(["spectrum", "--images", good, "--skip", "500"], ["--skip"], "skip beyond the end")
expect_error(["spectrum", "--images", good, "--limit", "500"], ["--limit"], "limit beyond the end")
expect_error(["spectrum", "--images", good, "--batch", "0"], ["--batch"], "batch 0")
expect_error(["spectrum", "--images", good, "--bogus"], ["--bogus"], "unknown option")
expect_error(["align", "--images", good, "--measure", "best"], ["--measure"], "bad measure")
expect_error(["align", "--images", good], ["labels"], "align without labels")
expect_error(["spectrum", "--images", good, "--scale", "abc"], ["--scale"], "bad scale")
expect_error(["spectrum", "--images", good, "--raw-shape", "1,x"], ["--raw-shape"], "bad raw shape")
expect_error(["project", "--images", good, "--image-shape", "3,3,1", "--out", os.path.join(tmp, "p.png")],
             ["--image-shape", "10"], "project shape mismatch")
expect_error(["spectrum", "--images", good, "--out", "/proc/forbidden/dir"], ["/proc/forbidden"], "unwritable --out")
expect_error(["info", good], [good, "magic"], "info on a non-checkpoint")
rc, out, err = c.run([])
c.check(rc == 2 and err.strip(), f"no command: exit {rc}")

# --- corrupt checkpoints
ck = os.path.join(tmp, "run.ckpt")
c.run(["spectrum", "--images", good, "--checkpoint", ck, "--quiet"], check_rc=0)
blob = open(ck, "rb").read()
p = os.path.join(tmp, "trunc.ckpt")
open(p, "wb").write(blob[:len(blob) // 2])
expect_error(["info", p], [p, "truncated"], "truncated checkpoint")
expect_error(["spectrum", "--from", p], [p, "truncated"], "truncated checkpoint via --from")
p = os.path.join(tmp, "flip.ckpt")
open(p, "wb").write(blob[:200] + bytes([blob[200] ^ 0x40]) + blob[201:])
expect_error(["spectrum", "--from", p], [p, "checksum"], "flipped byte in checkpoint")

# --- --help everywhere
for cmd in [[], ["align"], ["spectrum"], ["project"], ["merge"], ["info"]]:
    rc, out, err = c.run(cmd + ["--help"])
    c.check(rc == 0 and "--help" in out and "Usage" in out or "usage" in out.lower(), f"{cmd} --help: exit {rc}")

# --- bounded memory on an input far larger than a batch: 256 MiB of float32 (sparse file)
big = os.path.join(tmp, "big.npy")
rows, cols = 1 << 20, 64
with open(big, "wb") as f:
    np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (rows, cols)})
    f.truncate(f.tell() + rows * cols * 4)
rc, out, err, kb = c.run_rss(["spectrum", "--images", big, "--batch", "4096", "--json", "--quiet"])
c.check(rc == 0, f"big file: exit {rc} {err}")
c.check(kb < 64 * 1024, f"big file (256 MiB): max RSS {kb} KiB, expected < 64 MiB")
print(f"256 MiB input: max RSS {kb / 1024:.1f} MiB")

c.finish("cli_errors")
