"""The bad-input policy (README "Bad-input policy"), CLI surface: every row of the table.
Each refusal exits 2 with exactly one line on stderr starting 'recalign:' that names the
file and the byte offset or row, prints nothing on stdout, and leaves every checkpoint
given to it (and an existing merge output) byte-identical. A bad batch met mid-run leaves
the last checkpoint as it was: resuming it reads the same state as a run that stopped
before the bad batch."""
import json
import os
import struct
import zlib

import numpy as np

import cli_common as c

tmp = c.init()
rng = np.random.default_rng(8)
N, D, CLASSES = 200, 10, 3
X = rng.normal(size=(N, D))
Y = rng.integers(0, CLASSES, size=N)


def path(name):
    return os.path.join(tmp, name)


good = path("good.npy")
c.write_npy(good, X)
labels = path("labels.npy")
c.write_npy(labels, Y.astype("<i8"))


def read(p):
    with open(p, "rb") as f:
        return f.read()


def refused(args, expect_in, what, untouched=()):
    """Exit 2, one stderr line 'recalign: ...' naming expect_in, empty stdout, files in
    `untouched` byte-identical afterwards."""
    before = {p: read(p) for p in untouched}
    rc, out, err = c.run(args)
    c.one_line_error(rc, err, expect_in, what)
    c.check(err.startswith("recalign: "), f"{what}: stderr does not start with 'recalign: ': {err!r}")
    c.check("internal error" not in err, f"{what}: reported as an internal error: {err!r}")
    c.check(out == "", f"{what}: stdout not empty: {out!r}")
    for p, b in before.items():
        c.check(os.path.exists(p) and read(p) == b, f"{what}: {p} changed")
    return err


# ---- checkpoint crafting: the 64-byte header of lib/core/serial.cpp -----------------------
# magic[0:8] version u32[8] endian u32[12] kind u32[16] scalar u32[20] dim u64[24] aux u64[32]
# config_hash u64[40] payload_bytes u64[48] payload_crc u32[56] header_crc u32[60] = crc32([0:60])


def with_field(blob, offset, fmt, value):
    b = bytearray(blob)
    struct.pack_into(fmt, b, offset, value)
    struct.pack_into("<I", b, 60, zlib.crc32(bytes(b[:60])))
    return bytes(b)


def write(name, blob):
    p = path(name)
    with open(p, "wb") as f:
        f.write(blob)
    return p


# ---- wrong width ----------------------------------------------------------------------------
ck = path("run.ckpt")
c.run(["align", "--images", good, "--labels", labels, "--checkpoint", ck, "--quiet"], check_rc=0)
wide = path("wide.npy")
c.write_npy(wide, rng.normal(size=(N, D + 1)))
refused(["align", "--images", wide, "--labels", labels, "--checkpoint", ck, "--resume", "--quiet"],
        [ck, "row width D is 10 in the checkpoint but 11 in this run"], "resume with rows of another width", untouched=[ck])
p = path("wide.raw")
X.astype("<f8").tofile(p)
refused(["spectrum", "--images", p, "--raw-shape", "0,7", "--raw-dtype", "f8"], [p, "whole number of rows"],
        "raw file whose size is not a whole number of rows")
refused(["project", "--images", good, "--image-shape", "3,3,1", "--out", path("p.png")], ["--image-shape", "9", "10"],
        "image shape of another width")

# ---- NaN / Inf: the row (in the file) and column are named, for every format and route ----
for value, tag in [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")]:
    bad = X.copy()
    bad[137, 4] = value
    for fmt in ["npy", "idx", "raw"]:
        p = path(f"bad_{tag}.{fmt}")
        args = ["spectrum", "--images", p, "--batch", "50"]
        if fmt == "npy":
            c.write_npy(p, bad)
        elif fmt == "idx":
            c.write_idx(p, bad.astype(np.float64))
        else:
            bad.astype("<f4").tofile(p)
            args += ["--raw-shape", f"0,{D}", "--raw-dtype", "f4"]
        refused(args, [p, "row 137", "column 4", "not finite"], f"{tag} in a {fmt} file")
    for method in ["fd", "nystrom"]:
        refused(["spectrum", "--images", path(f"bad_{tag}.npy"), "--method", method, "--rank", "3", "--quiet"],
                [path(f"bad_{tag}.npy"), "row 137", "column 4"], f"{tag} via --method {method}")
p = path("bad_nan.npy")
refused(["spectrum", "--images", p, "--skip", "100", "--batch", "16"], [p, "row 137"],
        "NaN after --skip: the row counts from the start of the file")

# A bad batch met mid-run: the last checkpoint (rows 0..100) is left as it was, and resuming
# it reads the state a run that stopped before the bad batch has.
ck2 = path("nan_run.ckpt")
rc, out, err = c.run(["spectrum", "--images", p, "--batch", "50", "--checkpoint", ck2, "--checkpoint-every", "50",
                      "--quiet"])
c.one_line_error(rc, err, [p, "row 137"], "NaN mid-run with checkpoints")
info = json.loads(c.run(["info", ck2, "--json"], check_rc=0)[1])
c.check(info["n"] == 100 and info["segments"][0]["rows_done"] == 100, f"checkpoint after the bad batch: {info}")
refused(["spectrum", "--images", p, "--batch", "50", "--checkpoint", ck2, "--checkpoint-every", "50", "--resume",
         "--quiet"], [p, "row 137"], "resume into the bad batch again", untouched=[ck2])
first100 = path("first100.npy")
c.write_npy(first100, X[:100])
from_ckpt = c.run_json(["spectrum", "--from", ck2])
direct = c.run_json(["spectrum", "--images", first100, "--batch", "50"])
c.check(from_ckpt is not None and direct is not None and from_ckpt.get("eigenvalues") == direct.get("eigenvalues"),
        "the checkpoint left by a bad batch is not the state of the rows before it (bit for bit)")

# ---- labels out of range and negative ------------------------------------------------------
y = Y.copy()
y[42] = CLASSES
p = path("label_big.npy")
c.write_npy(p, y.astype("<i4"))
for method in ["exact", "fd"]:
    extra = [] if method == "exact" else ["--method", "fd", "--rank", "3"]
    refused(["align", "--images", good, "--labels", p, "--classes", str(CLASSES), "--quiet"] + extra,
            [p, "row 42", "label 3", "[0, 3)"], f"label out of range ({method})")
y[42] = -1
p = path("label_neg.npy")
c.write_npy(p, y.astype("<i8"))
refused(["align", "--images", good, "--labels", p], [p, "row 42", "-1"], "negative label")
p = path("label_neg.idx")
c.write_idx(p, y.astype(np.int16))
refused(["align", "--images", good, "--labels", p], [p, "row 42", "-1"], "negative label (IDX int16)")

# ---- wrong dtype -----------------------------------------------------------------------------


def npy_with_header(name, descr, shape, data):
    h = ("{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (descr, shape)).encode("latin1")
    h = h + b" " * (64 - (10 + len(h) + 1) % 64) + b"\n"
    return write(name, b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + data)


for descr, name in [("<c16", "complex"), ("|O", "object"), ("<U4", "string"), ("<M8[s]", "datetime")]:
    p = npy_with_header(f"dtype_{name}.npy", descr, (N, D), b"\0" * 64)
    refused(["spectrum", "--images", p], [p, "byte offset 10", "unsupported .npy dtype", descr.split("[")[0]],
            f"{name} .npy images")
    p = npy_with_header(f"labels_{name}.npy", descr, (N,), b"\0" * 64)
    refused(["align", "--images", good, "--labels", p], [p, "byte offset"], f"{name} .npy labels")
p = path("float_labels.npy")
c.write_npy(p, Y.astype("<f8"))
refused(["align", "--images", good, "--labels", p], [p, "integer"], "float labels")
p = path("type.idx")
c.write_idx(p, X.astype(np.float64))
blob = bytearray(read(p))
blob[2] = 0x07
write("type.idx", bytes(blob))
refused(["spectrum", "--images", p, "--format", "idx"], [p, "byte offset 2"], "IDX of an unknown type code")

# ---- target row count mismatch ----------------------------------------------------------------
p = path("short_labels.npy")
c.write_npy(p, Y[:150].astype("<i4"))
refused(["align", "--images", good, "--labels", p], [p, "150", "200"], "fewer labels than images")
p = path("long_labels.npy")
c.write_npy(p, np.concatenate([Y, Y[:5]]).astype("<i4"))
refused(["align", "--images", good, "--labels", p], [p, "205", "200"], "more labels than images")

# ---- truncated / corrupt data files ---------------------------------------------------------------
raw = read(good)
p = write("trunc.npy", raw[:-37])
refused(["spectrum", "--images", p], [p, "byte offset", "truncated"], "truncated .npy")
xi = path("x.idx")
c.write_idx(xi, (np.abs(X) * 10).astype(np.uint8))
p = write("trunc.idx", read(xi)[:-10])
refused(["spectrum", "--images", p], [p, "byte offset"], "truncated IDX")
p = write("corrupt.npy", b"\x93NUMPX" + raw[6:])
refused(["spectrum", "--images", p, "--format", "npy"], [p, "byte offset 0", "magic"], "corrupt .npy magic")

# ---- checkpoints: truncated, corrupt, newer/older version, another kind, another config hash ----
blob = read(ck)
half_a, half_b, merged = path("a.ckpt"), path("b.ckpt"), path("merged.ckpt")
c.run(["align", "--images", good, "--labels", labels, "--limit", "100", "--checkpoint", half_a, "--quiet"], check_rc=0)
c.run(["align", "--images", good, "--labels", labels, "--skip", "100", "--checkpoint", half_b, "--quiet"], check_rc=0)
c.run(["merge", half_a, half_b, "-o", merged], check_rc=0)
merged_bytes = read(merged)


def nested_state(run_blob):
    """The accumulator's own framed checkpoint inside a CLI run checkpoint (a library-level
    checkpoint, as C++ or Python would save it): the second 'RECALIGN' magic, header + payload."""
    at = run_blob.index(b"RECALIGN", 8)
    size = struct.unpack_from("<Q", run_blob, at + 48)[0]
    return run_blob[at:at + 64 + size]


moments_blob = nested_state(blob)
mom = write("moments.ckpt", moments_blob)
version = struct.unpack_from("<I", blob, 8)[0]
config_hash = struct.unpack_from("<Q", blob, 40)[0]
flipped = bytearray(blob)
flipped[len(blob) // 2] ^= 0x20
bad_ckpts = [
    ("truncated", write("t.ckpt", blob[:len(blob) - 10]), ["byte offset", "truncated"]),
    ("truncated header", write("th.ckpt", blob[:30]), ["byte offset 30", "truncated"]),
    ("corrupt payload byte", write("f.ckpt", bytes(flipped)), ["byte offset 64", "checksum"]),
    ("corrupt header byte", write("fh.ckpt", blob[:30] + bytes([blob[30] ^ 1]) + blob[31:]), ["byte offset 60", "checksum"]),
    ("newer format version", write("newer.ckpt", with_field(blob, 8, "<I", version + 1)),
     ["byte offset 8", f"version {version + 1}", "not supported"]),
    ("older format version", write("older.ckpt", with_field(blob, 8, "<I", 0)), ["byte offset 8", "version 0"]),
    ("another build's config hash", write("hash.ckpt", with_field(blob, 40, "<Q", config_hash ^ 0x5555)),
     ["byte offset 64", "hash"]),
    ("not a checkpoint", good, ["byte offset 0", "magic"]),
    ("newer moment checkpoint", write("mnewer.ckpt", with_field(moments_blob, 8, "<I", version + 1)),
     ["byte offset 8", f"version {version + 1}"]),
    ("moment checkpoint of another build", write("mhash.ckpt", with_field(moments_blob, 40, "<Q", 1)),
     ["byte offset 64", "hash"]),
    ("corrupt moment checkpoint", write("mflip.ckpt", moments_blob[:-3] + bytes([moments_blob[-3] ^ 1]) + moments_blob[-2:]),
     ["byte offset 64", "checksum"]),
]
for what, p, parts in bad_ckpts:
    keep = [p, ck, merged]
    refused(["info", p], [p] + parts, f"info: {what}", untouched=keep)
    refused(["align", "--from", p], [p] + parts, f"--from: {what}", untouched=keep)
    first = mom if os.path.basename(p).startswith("m") else ck
    refused(["merge", first, p, "-o", merged], [p] + parts, f"merge (second input): {what}", untouched=keep)
    refused(["merge", p, first, "-o", merged], [p] + parts, f"merge (first input): {what}", untouched=keep)
    if p != good:
        cp = write("resume_" + os.path.basename(p), read(p))
        expect = parts if not os.path.basename(p).startswith("m") else ["byte offset"]
        refused(["align", "--images", good, "--labels", labels, "--checkpoint", cp, "--resume", "--quiet"],
                [cp] + expect, f"--resume: {what}", untouched=[cp])

# Another kind: the header says frequent_directions (CRC recomputed), the payload is a CLI run.
p = write("kind.ckpt", with_field(blob, 16, "<I", 2))
refused(["align", "--from", p], [p, "byte offset 16", "frequent_directions", "cli_run"], "--from: another kind",
        untouched=[p])
cp = write("resume_kind.ckpt", read(p))
refused(["align", "--images", good, "--labels", labels, "--checkpoint", cp, "--resume", "--quiet"],
        [cp, "byte offset 16", "frequent_directions"], "--resume: another kind", untouched=[cp])
refused(["info", p], [p, "byte offset 64", "invalid checkpoint payload"], "info: another kind (its payload is not one)",
        untouched=[p])
refused(["merge", ck, p, "-o", merged], [p, "frequent_directions"], "merge: another kind", untouched=[p, merged])
refused(["merge", ck, mom, "-o", merged], [mom, "moment_accumulator", "cli_run"],
        "merge: a run checkpoint with a moment checkpoint", untouched=[ck, mom, merged])
# A library-level sketch checkpoint (nested in a CLI run): info validates its payload too.
sk = path("fd_run.ckpt")
c.run(["spectrum", "--images", good, "--method", "fd", "--rank", "3", "--checkpoint", sk, "--quiet"], check_rc=0)
fd_blob = nested_state(read(sk))
c.check(struct.unpack_from("<I", fd_blob, 16)[0] == 2, "the nested state of an fd run is not a frequent_directions")
p = write("fd.ckpt", fd_blob)
c.run(["info", p], check_rc=0)
p = write("fd_flip.ckpt", fd_blob[:100] + bytes([fd_blob[100] ^ 4]) + fd_blob[101:])
refused(["info", p], [p, "byte offset 64", "checksum"], "info: corrupt frequent_directions checkpoint", untouched=[p])
p = write("fd_trunc.ckpt", fd_blob[:-1])
refused(["info", p], [p, "truncated"], "info: truncated frequent_directions checkpoint", untouched=[p])
refused(["spectrum", "--from", write("fd_from.ckpt", fd_blob)], ["fd_from.ckpt", "byte offset 16", "frequent_directions"],
        "--from: a frequent_directions checkpoint")

# ---- merging incompatible states ------------------------------------------------------------------
other_w = path("other_width.ckpt")
c.run(["align", "--images", wide, "--labels", labels, "--checkpoint", other_w, "--quiet"], check_rc=0)
refused(["merge", half_a, other_w, "-o", merged], [other_w, "row width D", f"10 in {half_a}", f"11 in {other_w}"], "merge: different width",
        untouched=[half_a, other_w, merged])
other_c = path("other_classes.ckpt")
c.run(["align", "--images", good, "--labels", labels, "--skip", "100", "--classes", "5", "--checkpoint", other_c,
       "--quiet"], check_rc=0)
refused(["merge", half_a, other_c, "-o", merged], [other_c, "classes", f"3 in {half_a}", f"5 in {other_c}"], "merge: different classes",
        untouched=[half_a, other_c, merged])
sk_a, sk_b = path("sk_a.ckpt"), path("sk_b.ckpt")
c.run(["spectrum", "--images", good, "--limit", "100", "--method", "nystrom", "--rank", "3", "--seed", "1",
       "--checkpoint", sk_a, "--quiet"], check_rc=0)
c.run(["spectrum", "--images", good, "--skip", "100", "--method", "nystrom", "--rank", "3", "--seed", "2",
       "--checkpoint", sk_b, "--quiet"], check_rc=0)
refused(["merge", sk_a, sk_b, "-o", merged], [sk_b, "--seed", f"1 in {sk_a}", f"2 in {sk_b}"], "merge: different sketch seed",
        untouched=[sk_a, sk_b, merged])
sk_c = path("sk_c.ckpt")
c.run(["spectrum", "--images", good, "--skip", "100", "--method", "nystrom", "--rank", "4", "--seed", "1",
       "--checkpoint", sk_c, "--quiet"], check_rc=0)
refused(["merge", sk_a, sk_c, "-o", merged], [sk_c, "--rank", f"3 in {sk_a}", f"4 in {sk_c}"], "merge: different sketch rank",
        untouched=[sk_a, sk_c, merged])
refused(["merge", sk_a, half_b, "-o", merged], [half_b, "--method", f"nystrom in {sk_a}", f"exact in {half_b}"], "merge: sketch with exact moments",
        untouched=[sk_a, half_b, merged])
c.check(read(merged) == merged_bytes, "a refused merge changed the existing output")
# Library-level moment checkpoints of different widths: the accumulator's own refusal, naming both.
wide_mom = write("moments_wide.ckpt", nested_state(read(other_w)))
refused(["merge", mom, wide_mom, "-o", merged], [wide_mom, "dimension 10 and 11"], "merge: moment checkpoints of two widths",
        untouched=[mom, wide_mom, merged])
c.check(read(merged) == merged_bytes, "a refused merge changed the existing output")

c.finish("cli_bad_input")
