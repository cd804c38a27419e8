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
import pytest

import cli_common as c

rng = np.random.default_rng(8)
N, D, CLASSES = 200, 10, 3
X = rng.normal(size=(N, D))
Y = rng.integers(0, CLASSES, size=N)
WIDE = rng.normal(size=(N, D + 1))


@pytest.fixture(scope="module")
def path(tmp):
    return lambda name: os.path.join(tmp, name)


@pytest.fixture(scope="module")
def write(path):
    def write(name, blob):
        p = path(name)
        with open(p, "wb") as f:
            f.write(blob)
        return p
    return write


@pytest.fixture(scope="module")
def good(path):
    return c.write_npy(path("good.npy"), X)


@pytest.fixture(scope="module")
def labels(path):
    return c.write_npy(path("labels.npy"), Y.astype("<i8"))


@pytest.fixture(scope="module")
def wide(path):
    return c.write_npy(path("wide.npy"), WIDE)


@pytest.fixture(scope="module")
def ck(path, good, labels):
    """The checkpoint of a complete align run over good.npy."""
    p = path("run.ckpt")
    c.run(["align", "--images", good, "--labels", labels, "--checkpoint", p, "--quiet"], check_rc=0)
    return p


def read(p):
    with open(p, "rb") as f:
        return f.read()


def refused(args, expect_in, what, untouched=()):
    """Exit 2, one stderr line 'recalign: ...' naming expect_in, empty stdout, files in
    `untouched` byte-identical afterwards."""
    before = {p: read(p) for p in untouched}
    rc, out, err = c.run(args)
    c.assert_one_line_error(rc, err, expect_in, what)
    assert err.startswith("recalign: "), f"{what}: stderr does not start with 'recalign: ': {err!r}"
    assert "internal error" not in err, f"{what}: reported as an internal error: {err!r}"
    assert out == "", f"{what}: stdout not empty: {out!r}"
    for p, b in before.items():
        assert os.path.exists(p) and read(p) == b, f"{what}: {p} changed"
    return err


# ---- checkpoint crafting: the 64-byte header of lib/core/serial.cpp -----------------------
# magic[0:8] version u32[8] endian u32[12] kind u32[16] scalar u32[20] dim u64[24] aux u64[32]
# config_hash u64[40] payload_bytes u64[48] payload_crc u32[56] header_crc u32[60] = crc32([0:60])


def with_field(blob, offset, fmt, value):
    b = bytearray(blob)
    struct.pack_into(fmt, b, offset, value)
    struct.pack_into("<I", b, 60, zlib.crc32(bytes(b[:60])))
    return bytes(b)


def nested_state(run_blob):
    """The accumulator's own framed checkpoint inside a CLI run checkpoint (a library-level
    checkpoint, as C++ or Python would save it): the second 'RECALIGN' magic, header + payload."""
    at = run_blob.index(b"RECALIGN", 8)
    size = struct.unpack_from("<Q", run_blob, at + 48)[0]
    return run_blob[at:at + 64 + size]


# ---- wrong width ----------------------------------------------------------------------------
def test_resume_with_rows_of_another_width(good, labels, wide, ck):
    refused(["align", "--images", wide, "--labels", labels, "--checkpoint", ck, "--resume", "--quiet"],
            [ck, "row width D is 10 in the checkpoint but 11 in this run", "another --crop, --resize or --channels"],
            "resume with rows of another width",
            untouched=[ck])


def test_raw_file_not_a_whole_number_of_rows(path):
    p = path("wide.raw")
    X.astype("<f8").tofile(p)
    refused(["spectrum", "--images", p, "--raw-shape", "0,7", "--raw-dtype", "f8"], [p, "whole number of rows"],
            "raw file whose size is not a whole number of rows")


def test_image_shape_of_another_width(path, good):
    refused(["project", "--images", good, "--image-shape", "3,3,1", "--out", path("p.png")], ["--image-shape", "9", "10"],
            "image shape of another width")


# ---- NaN / Inf: the row (in the file) and column are named, for every format and route ----
VALUES = [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")]


def bad_values_file(path, value, tag, fmt):
    bad = X.copy()
    bad[137, 4] = value
    p = path(f"bad_{tag}.{fmt}")
    args = ["spectrum", "--images", p, "--batch", "50"]
    if fmt == "npy":
        c.write_npy(p, bad)
    elif fmt == "idx":
        c.write_idx(p, bad.astype(np.float64))
    else:
        bad.astype("<f4").tofile(p)
        args += ["--raw-shape", f"0,{D}", "--raw-dtype", "f4"]
    return p, args


@pytest.mark.parametrize("fmt", ["npy", "idx", "raw"])
@pytest.mark.parametrize("value,tag", VALUES, ids=[t for _, t in VALUES])
def test_not_finite_value(path, value, tag, fmt):
    p, args = bad_values_file(path, value, tag, fmt)
    refused(args, [p, "row 137", "column 4", "not finite"], f"{tag} in a {fmt} file")


@pytest.mark.parametrize("method", ["fd", "nystrom"])
@pytest.mark.parametrize("value,tag", VALUES, ids=[t for _, t in VALUES])
def test_not_finite_value_via_a_sketch(path, value, tag, method):
    p, _ = bad_values_file(path, value, tag, "npy")
    refused(["spectrum", "--images", p, "--method", method, "--rank", "3", "--quiet"],
            [p, "row 137", "column 4"], f"{tag} via --method {method}")


def test_nan_after_skip_counts_rows_from_the_start_of_the_file(path):
    p, _ = bad_values_file(path, np.nan, "nan", "npy")
    refused(["spectrum", "--images", p, "--skip", "100", "--batch", "16"], [p, "row 137"],
            "NaN after --skip: the row counts from the start of the file")


def test_bad_batch_mid_run_leaves_the_last_checkpoint(path):
    """The last checkpoint (rows 0..100) is left as it was, and resuming it reads the state a
    run that stopped before the bad batch has."""
    p, _ = bad_values_file(path, np.nan, "nan", "npy")
    ck2 = path("nan_run.ckpt")
    rc, out, err = c.run(["spectrum", "--images", p, "--batch", "50", "--checkpoint", ck2, "--checkpoint-every", "50",
                          "--quiet"])
    c.assert_one_line_error(rc, err, [p, "row 137"], "NaN mid-run with checkpoints")
    info = json.loads(c.run(["info", ck2, "--json"], check_rc=0)[1])
    assert info["n"] == 100 and info["segments"][0]["rows_done"] == 100, f"checkpoint after the bad batch: {info}"
    refused(["spectrum", "--images", p, "--batch", "50", "--checkpoint", ck2, "--checkpoint-every", "50", "--resume",
             "--quiet"], [p, "row 137"], "resume into the bad batch again", untouched=[ck2])
    first100 = path("first100.npy")
    c.write_npy(first100, X[:100])
    from_ckpt = c.run_json(["spectrum", "--from", ck2])
    direct = c.run_json(["spectrum", "--images", first100, "--batch", "50"])
    assert from_ckpt.get("eigenvalues") == direct.get("eigenvalues"), \
        "the checkpoint left by a bad batch is not the state of the rows before it (bit for bit)"


# ---- labels out of range and negative ------------------------------------------------------
@pytest.mark.parametrize("method", ["exact", "fd"])
def test_label_out_of_range(path, good, method):
    y = Y.copy()
    y[42] = CLASSES
    p = path("label_big.npy")
    c.write_npy(p, y.astype("<i4"))
    extra = [] if method == "exact" else ["--method", "fd", "--rank", "3"]
    refused(["align", "--images", good, "--labels", p, "--classes", str(CLASSES), "--quiet"] + extra,
            [p, "row 42", "label 3", "[0, 3)"], f"label out of range ({method})")


@pytest.mark.parametrize("fmt", ["npy", "idx"], ids=["npy-i8", "idx-i16"])
def test_negative_label(path, good, fmt):
    y = Y.copy()
    y[42] = -1
    p = path(f"label_neg.{fmt}")
    if fmt == "npy":
        c.write_npy(p, y.astype("<i8"))
    else:
        c.write_idx(p, y.astype(np.int16))
    refused(["align", "--images", good, "--labels", p], [p, "row 42", "-1"],
            "negative label" if fmt == "npy" else "negative label (IDX int16)")


# ---- wrong dtype -----------------------------------------------------------------------------
DTYPES = [("<c16", "complex"), ("|O", "object"), ("<U4", "string"), ("<M8[s]", "datetime")]


def npy_of(path, name, descr, shape):
    return c.npy_with_header(path(name), "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (descr, shape),
                             data=b"\0" * 64)


@pytest.mark.parametrize("descr,name", DTYPES, ids=[n for _, n in DTYPES])
def test_unsupported_npy_dtype_images(path, descr, name):
    p = npy_of(path, f"dtype_{name}.npy", descr, (N, D))
    refused(["spectrum", "--images", p], [p, "byte offset 10", "unsupported .npy dtype", descr.split("[")[0]],
            f"{name} .npy images")


@pytest.mark.parametrize("descr,name", DTYPES, ids=[n for _, n in DTYPES])
def test_unsupported_npy_dtype_labels(path, good, descr, name):
    p = npy_of(path, f"labels_{name}.npy", descr, (N,))
    refused(["align", "--images", good, "--labels", p], [p, "byte offset"], f"{name} .npy labels")


def test_float_labels(path, good):
    p = path("float_labels.npy")
    c.write_npy(p, Y.astype("<f8"))
    refused(["align", "--images", good, "--labels", p], [p, "integer"], "float labels")


def test_idx_of_an_unknown_type_code(path, write):
    p = path("type.idx")
    c.write_idx(p, X.astype(np.float64))
    blob = bytearray(read(p))
    blob[2] = 0x07
    write("type.idx", bytes(blob))
    refused(["spectrum", "--images", p, "--format", "idx"], [p, "byte offset 2"], "IDX of an unknown type code")


# ---- target row count mismatch ----------------------------------------------------------------
@pytest.mark.parametrize("name,y,mentions,what", [
    ("short_labels.npy", Y[:150], ["150", "200"], "fewer labels than images"),
    ("long_labels.npy", np.concatenate([Y, Y[:5]]), ["205", "200"], "more labels than images"),
], ids=["fewer", "more"])
def test_label_count_mismatch(path, good, name, y, mentions, what):
    p = path(name)
    c.write_npy(p, y.astype("<i4"))
    refused(["align", "--images", good, "--labels", p], [p] + mentions, what)


# ---- truncated / corrupt data files ---------------------------------------------------------------
def test_truncated_npy(good, write):
    p = write("trunc.npy", read(good)[:-37])
    refused(["spectrum", "--images", p], [p, "byte offset", "truncated"], "truncated .npy")


def test_truncated_idx(path, write):
    xi = path("x.idx")
    c.write_idx(xi, (np.abs(X) * 10).astype(np.uint8))
    p = write("trunc.idx", read(xi)[:-10])
    refused(["spectrum", "--images", p], [p, "byte offset"], "truncated IDX")


def test_corrupt_npy_magic(good, write):
    p = write("corrupt.npy", b"\x93NUMPX" + read(good)[6:])
    refused(["spectrum", "--images", p, "--format", "npy"], [p, "byte offset 0", "magic"], "corrupt .npy magic")


# ---- checkpoints: truncated, corrupt, newer/older version, another kind, another config hash ----
@pytest.fixture(scope="module")
def halves(path, good, labels):
    """Checkpoints of rows 0..100 and 100..200, and their merge (an existing merge output)."""
    half_a, half_b, merged = path("a.ckpt"), path("b.ckpt"), path("merged.ckpt")
    c.run(["align", "--images", good, "--labels", labels, "--limit", "100", "--checkpoint", half_a, "--quiet"], check_rc=0)
    c.run(["align", "--images", good, "--labels", labels, "--skip", "100", "--checkpoint", half_b, "--quiet"], check_rc=0)
    c.run(["merge", half_a, half_b, "-o", merged], check_rc=0)
    return half_a, half_b, merged, read(merged)


@pytest.fixture(scope="module")
def mom(ck, write):
    """The moment accumulator's own checkpoint nested in run.ckpt, as a file."""
    return write("moments.ckpt", nested_state(read(ck)))


BAD_CHECKPOINTS = [
    "truncated", "truncated header", "corrupt payload byte", "corrupt header byte", "newer format version",
    "older format version", "another build's config hash", "not a checkpoint", "newer moment checkpoint",
    "moment checkpoint of another build", "corrupt moment checkpoint"]


@pytest.fixture(scope="module")
def bad_ckpts(ck, good, mom, write):
    """what -> (file, what its stderr line must name besides the file)."""
    blob = read(ck)
    moments_blob = read(mom)
    version = struct.unpack_from("<I", blob, 8)[0]
    config_hash = struct.unpack_from("<Q", blob, 40)[0]
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 0x20
    return {
        "truncated": (write("t.ckpt", blob[:len(blob) - 10]), ["byte offset", "truncated"]),
        "truncated header": (write("th.ckpt", blob[:30]), ["byte offset 30", "truncated"]),
        "corrupt payload byte": (write("f.ckpt", bytes(flipped)), ["byte offset 64", "checksum"]),
        "corrupt header byte": (write("fh.ckpt", blob[:30] + bytes([blob[30] ^ 1]) + blob[31:]),
                                ["byte offset 60", "checksum"]),
        "newer format version": (write("newer.ckpt", with_field(blob, 8, "<I", version + 1)),
                                 ["byte offset 8", f"version {version + 1}", "not supported"]),
        "older format version": (write("older.ckpt", with_field(blob, 8, "<I", 0)), ["byte offset 8", "version 0"]),
        "another build's config hash": (write("hash.ckpt", with_field(blob, 40, "<Q", config_hash ^ 0x5555)),
                                        ["byte offset 64", "hash"]),
        "not a checkpoint": (good, ["byte offset 0", "magic"]),
        "newer moment checkpoint": (write("mnewer.ckpt", with_field(moments_blob, 8, "<I", version + 1)),
                                    ["byte offset 8", f"version {version + 1}"]),
        "moment checkpoint of another build": (write("mhash.ckpt", with_field(moments_blob, 40, "<Q", 1)),
                                               ["byte offset 64", "hash"]),
        "corrupt moment checkpoint": (write("mflip.ckpt", moments_blob[:-3] + bytes([moments_blob[-3] ^ 1])
                                            + moments_blob[-2:]), ["byte offset 64", "checksum"]),
    }


@pytest.mark.parametrize("operation", ["info", "from", "merge-second", "merge-first"])
@pytest.mark.parametrize("what", BAD_CHECKPOINTS)
def test_bad_checkpoint(bad_ckpts, ck, mom, halves, what, operation):
    p, parts = bad_ckpts[what]
    merged = halves[2]
    keep = [p, ck, merged]
    first = mom if os.path.basename(p).startswith("m") else ck
    args = {"info": ["info", p], "from": ["align", "--from", p], "merge-second": ["merge", first, p, "-o", merged],
            "merge-first": ["merge", p, first, "-o", merged]}[operation]
    label = {"info": "info", "from": "--from", "merge-second": "merge (second input)",
             "merge-first": "merge (first input)"}[operation]
    refused(args, [p] + parts, f"{label}: {what}", untouched=keep)


@pytest.mark.parametrize("what", [w for w in BAD_CHECKPOINTS if w != "not a checkpoint"])
def test_resume_of_a_bad_checkpoint(bad_ckpts, good, labels, write, what):
    p, parts = bad_ckpts[what]
    cp = write("resume_" + os.path.basename(p), read(p))
    expect = parts if not os.path.basename(p).startswith("m") else ["byte offset"]
    refused(["align", "--images", good, "--labels", labels, "--checkpoint", cp, "--resume", "--quiet"],
            [cp] + expect, f"--resume: {what}", untouched=[cp])


# Another kind: the header says frequent_directions (CRC recomputed), the payload is a CLI run.
@pytest.fixture(scope="module")
def other_kind(ck, write):
    return write("kind.ckpt", with_field(read(ck), 16, "<I", 2))


def test_another_kind_from(other_kind):
    p = other_kind
    refused(["align", "--from", p], [p, "byte offset 16", "frequent_directions", "cli_run"], "--from: another kind",
            untouched=[p])


def test_another_kind_resume(other_kind, good, labels, write):
    cp = write("resume_kind.ckpt", read(other_kind))
    refused(["align", "--images", good, "--labels", labels, "--checkpoint", cp, "--resume", "--quiet"],
            [cp, "byte offset 16", "frequent_directions"], "--resume: another kind", untouched=[cp])


def test_another_kind_info(other_kind):
    p = other_kind
    refused(["info", p], [p, "byte offset 64", "invalid checkpoint payload"], "info: another kind (its payload is not one)",
            untouched=[p])


def test_another_kind_merge(other_kind, ck, halves):
    merged = halves[2]
    refused(["merge", ck, other_kind, "-o", merged], [other_kind, "frequent_directions"], "merge: another kind",
            untouched=[other_kind, merged])


def test_merge_of_a_run_checkpoint_with_a_moment_checkpoint(ck, mom, halves):
    merged = halves[2]
    refused(["merge", ck, mom, "-o", merged], [mom, "moment_accumulator", "cli_run"],
            "merge: a run checkpoint with a moment checkpoint", untouched=[ck, mom, merged])


# A library-level sketch checkpoint (nested in a CLI run): info validates its payload too.
@pytest.fixture(scope="module")
def fd_blob(path, good):
    sk = path("fd_run.ckpt")
    c.run(["spectrum", "--images", good, "--method", "fd", "--rank", "3", "--checkpoint", sk, "--quiet"], check_rc=0)
    return nested_state(read(sk))


def test_nested_fd_state(fd_blob, write):
    assert struct.unpack_from("<I", fd_blob, 16)[0] == 2, "the nested state of an fd run is not a frequent_directions"
    c.run(["info", write("fd.ckpt", fd_blob)], check_rc=0)


def test_info_corrupt_frequent_directions(fd_blob, write):
    p = write("fd_flip.ckpt", fd_blob[:100] + bytes([fd_blob[100] ^ 4]) + fd_blob[101:])
    refused(["info", p], [p, "byte offset 64", "checksum"], "info: corrupt frequent_directions checkpoint", untouched=[p])


def test_info_truncated_frequent_directions(fd_blob, write):
    p = write("fd_trunc.ckpt", fd_blob[:-1])
    refused(["info", p], [p, "truncated"], "info: truncated frequent_directions checkpoint", untouched=[p])


def test_from_a_frequent_directions_checkpoint(fd_blob, write):
    refused(["spectrum", "--from", write("fd_from.ckpt", fd_blob)], ["fd_from.ckpt", "byte offset 16", "frequent_directions"],
            "--from: a frequent_directions checkpoint")


# ---- merging incompatible states ------------------------------------------------------------------
@pytest.fixture(scope="module")
def other_width(path, wide, labels):
    p = path("other_width.ckpt")
    c.run(["align", "--images", wide, "--labels", labels, "--checkpoint", p, "--quiet"], check_rc=0)
    return p


def refused_merge(halves, a, b, expect_in, what):
    """A refused merge names both values and leaves both inputs and the existing output as they were."""
    merged, merged_bytes = halves[2], halves[3]
    refused(["merge", a, b, "-o", merged], expect_in, what, untouched=[a, b, merged])
    assert read(merged) == merged_bytes, "a refused merge changed the existing output"


def test_merge_different_width(halves, other_width):
    half_a = halves[0]
    refused_merge(halves, half_a, other_width, [other_width, "row width D", f"10 in {half_a}", f"11 in {other_width}"],
                  "merge: different width")


def test_merge_different_classes(path, good, labels, halves):
    half_a = halves[0]
    other_c = path("other_classes.ckpt")
    c.run(["align", "--images", good, "--labels", labels, "--skip", "100", "--classes", "5", "--checkpoint", other_c,
           "--quiet"], check_rc=0)
    refused_merge(halves, half_a, other_c, [other_c, "classes", f"3 in {half_a}", f"5 in {other_c}"],
                  "merge: different classes")


@pytest.fixture(scope="module")
def sketch_a(path, good):
    sk_a = path("sk_a.ckpt")
    c.run(["spectrum", "--images", good, "--limit", "100", "--method", "nystrom", "--rank", "3", "--seed", "1",
           "--checkpoint", sk_a, "--quiet"], check_rc=0)
    return sk_a


@pytest.mark.parametrize("option,value", [("--seed", "2"), ("--rank", "4")], ids=["seed", "rank"])
def test_merge_different_sketch_option(path, good, halves, sketch_a, option, value):
    other = {"--seed": ["--rank", "3", "--seed", "2"], "--rank": ["--rank", "4", "--seed", "1"]}[option]
    sk = path(f"sk_{option[2:]}.ckpt")
    c.run(["spectrum", "--images", good, "--skip", "100", "--method", "nystrom"] + other + ["--checkpoint", sk, "--quiet"],
          check_rc=0)
    mine = {"--seed": "1", "--rank": "3"}[option]
    refused_merge(halves, sketch_a, sk, [sk, option, f"{mine} in {sketch_a}", f"{value} in {sk}"],
                  f"merge: different sketch {option[2:]}")


def test_merge_sketch_with_exact_moments(halves, sketch_a):
    half_b = halves[1]
    refused_merge(halves, sketch_a, half_b, [half_b, "--method", f"nystrom in {sketch_a}", f"exact in {half_b}"],
                  "merge: sketch with exact moments")


def test_merge_moment_checkpoints_of_two_widths(halves, mom, other_width, write):
    """Library-level moment checkpoints of different widths: the accumulator's own refusal, naming both."""
    wide_mom = write("moments_wide.ckpt", nested_state(read(other_width)))
    refused_merge(halves, mom, wide_mom, [wide_mom, "dimension 10 and 11"], "merge: moment checkpoints of two widths")
