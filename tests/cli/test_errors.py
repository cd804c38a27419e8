"""User errors: truncated files, wrong magic, absurd dimensions, bad values and bad options
exit with status 2 and one line on stderr naming the file and the byte offset or row, and
without a large allocation (max RSS of the process is measured with wait4). Also --help on
every command, and bounded memory on an input much larger than the batch."""
import gzip
import functools
import os
import struct

import numpy as np
import pytest

import cli_common as c

rng = np.random.default_rng(1)
N, D = 200, 10
X = rng.normal(size=(N, D))
Y = rng.integers(0, 3, size=N)
RSS_LIMIT_KB = 150 * 1024  # a rejected absurd header must not allocate: far below the claims


@pytest.fixture(scope="module")
def good(tmp):
    return c.write_npy(os.path.join(tmp, "good.npy"), X)


@pytest.fixture(scope="module")
def labels(tmp):
    return c.write_npy(os.path.join(tmp, "labels.npy"), Y.astype("<i8"))


@pytest.fixture(scope="module")
def idx_bytes(tmp):
    xi = os.path.join(tmp, "x.idx")
    c.write_idx(xi, (np.abs(X) * 10).astype(np.uint8))
    return open(xi, "rb").read()


def expect_error(args, expect_in, what, rss=True):
    rc, out, err, kb = c.run_rss(args)
    c.assert_one_line_error(rc, err, expect_in, what)
    if rss:
        # Under AddressSanitizer the runtime's own memory comes on top (rss_bound_kb): the
        # --memory refusal measured 175 MB there, 11 MB in the release build.
        assert kb < rss_bound_kb(RSS_LIMIT_KB), f"{what}: max RSS {kb} KiB"


def write(path, blob):
    with open(path, "wb") as f:
        f.write(blob)
    return path


# --- .npy: each case writes its file from the bytes of good.npy, then names the expected
# parts of the one stderr line (the file itself is always named)
NPY_CASES = {
    "npy wrong magic": (lambda raw: b"\x93NUMPX" + raw[6:], ["--format", "npy"], ["byte offset 0", "magic"]),
    "npy truncated data": (lambda raw: raw[:-37], [], ["byte offset", "truncated"]),
    "npy truncated header": (lambda raw: raw[:40], [], ["byte offset", "truncated"]),
    "npy 5 bytes": (lambda raw: raw[:5], ["--format", "npy"], ["byte offset"]),
    "npy absurd header length": (lambda raw: b"\x93NUMPY\x02\x00" + struct.pack("<I", 0xFFFFFFF0) + b"{}", [],
                                 ["byte offset 8", "header length"]),
    "npy version 7": (lambda raw: b"\x93NUMPY\x07\x00" + raw[8:], [], ["byte offset 6", "version"]),
}


@pytest.mark.parametrize("what", list(NPY_CASES))
def test_npy_bytes(tmp, good, what):
    make, extra, parts = NPY_CASES[what]
    p = write(os.path.join(tmp, what.replace(" ", "_") + ".npy"), make(open(good, "rb").read()))
    expect_error(["spectrum", "--images", p] + extra, [p] + parts, what)


NPY_HEADERS = {
    "npy absurd shape (overflow)": ("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000, 1000000), }",
                                    b"\0" * 800, ["byte offset"]),
    "npy header claims 25 TB": ("{'descr': '<f8', 'fortran_order': False, 'shape': (4000000000, 784), }",
                                b"\0" * 800, ["byte offset", "truncated"]),
    "npy complex dtype": ("{'descr': '<c16', 'fortran_order': False, 'shape': (2, 2), }", b"\0" * 64, ["c16"]),
    "npy structured dtype": ("{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (2,), }", b"\0" * 16,
                             ["structured"]),
    "npy malformed header": ("{'descr': '<f8', 'fortran_order': Maybe, 'shape': (2, 2), }", b"\0" * 32,
                             ["byte offset", "fortran_order"]),
}


@pytest.mark.parametrize("what", list(NPY_HEADERS))
def test_npy_header(tmp, what):
    header, data, parts = NPY_HEADERS[what]
    p = c.npy_with_header(os.path.join(tmp, what.split()[1] + ".npy"), header, data=data)
    expect_error(["spectrum", "--images", p], [p] + parts, what)


# --- IDX
IDX_CASES = {
    "IDX truncated": ("trunc.idx", lambda idx: idx[:-10], [], ["byte offset"]),
    "IDX absurd dims": ("absurd.idx", lambda idx: struct.pack(">BBBBIII", 0, 0, 0x0E, 3, 0xFFFFFFFF, 0xFFFF, 0xFFFF)
                        + b"\0" * 100, [], ["byte offset"]),
    "IDX unknown type": ("type.idx", lambda idx: b"\0\0\x07\x02" + idx[4:], ["--format", "idx"], ["byte offset 2"]),
    "IDX .gz truncated": ("trunc.idx.gz", lambda idx: gzip.compress(idx)[:-30], [], ["byte offset"]),
    "IDX .gz announcing 5 GiB": ("absurd.idx.gz", lambda idx: gzip.compress(
        struct.pack(">BBBBII", 0, 0, 0x08, 2, 5, 1 << 30) + b"\0" * 1000), [], ["byte offset", "gzip"]),
}


@pytest.mark.parametrize("what", list(IDX_CASES))
def test_idx(tmp, idx_bytes, what):
    name, make, extra, parts = IDX_CASES[what]
    p = write(os.path.join(tmp, name), make(idx_bytes))
    expect_error(["spectrum", "--images", p] + extra, [p] + parts, what)


def test_too_wide_for_the_exact_route(tmp):
    p = c.npy_with_header(os.path.join(tmp, "wide.npy"),
                          "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 200000), }", data=b"\1" * 200000)
    expect_error(["spectrum", "--images", p], ["--method exact", "GiB", "--method fd"], "D too large for the exact route")


def test_unknown_format(tmp):
    p = write(os.path.join(tmp, "unknown.bin"), b"hello world, not a data file")
    expect_error(["spectrum", "--images", p], [p, "byte offset 0", "--format raw"], "unknown format")


# --- raw
@pytest.mark.parametrize("shape,parts,what", [
    ("201,10", ["bytes"], "raw too short"),
    ("0,7", ["whole number of rows"], "raw width not dividing"),
    ("4611686018427387904,1000", [], "raw absurd rows"),
], ids=["short", "width", "absurd"])
def test_raw(tmp, shape, parts, what):
    p = os.path.join(tmp, "x.raw")
    X.astype("<f8").tofile(p)
    expect_error(["spectrum", "--images", p, "--raw-shape", shape, "--raw-dtype", "f8"], [p] + parts, what)


# --- values and labels: the row is named
def test_nan_row(tmp):
    bad = X.copy()
    bad[137, 4] = np.nan
    p = os.path.join(tmp, "nan.npy")
    c.write_npy(p, bad)
    expect_error(["spectrum", "--images", p, "--batch", "50"], [p, "row 137"], "NaN in row 137")


def test_label_out_of_range(good, labels):
    expect_error(["align", "--images", good, "--labels", labels, "--classes", "2"], ["row", labels], "label out of range")


LABEL_FILES = {
    "negative label": ("neg.npy", lambda: np.where(np.arange(N) == 42, -1, Y).astype("<i4"), ["row 42"]),
    "label count mismatch": ("short_labels.npy", lambda: Y[:150].astype("<i4"), ["150", "200"]),
    "float labels": ("float_labels.npy", lambda: Y.astype("<f4"), ["integer"]),
}


@pytest.mark.parametrize("what", list(LABEL_FILES))
def test_bad_labels(tmp, good, what):
    name, make, parts = LABEL_FILES[what]
    p = os.path.join(tmp, name)
    c.write_npy(p, make())
    expect_error(["align", "--images", good, "--labels", p], [p] + parts, what)


# --- options
OPTION_CASES = {
    "skip beyond the end": (["spectrum", "--skip", "500"], ["--skip"]),
    "limit beyond the end": (["spectrum", "--limit", "500"], ["--limit"]),
    "batch 0": (["spectrum", "--batch", "0"], ["--batch"]),
    "unknown option": (["spectrum", "--bogus"], ["--bogus"]),
    "bad measure": (["align", "--measure", "best"], ["--measure"]),
    "align without labels": (["align"], ["labels"]),
    "bad scale": (["spectrum", "--scale", "abc"], ["--scale"]),
    "bad raw shape": (["spectrum", "--raw-shape", "1,x"], ["--raw-shape"]),
    "unwritable --out": (["spectrum", "--out", "/proc/forbidden/dir"], ["/proc/forbidden"]),
}


@pytest.mark.parametrize("what", list(OPTION_CASES))
def test_bad_option(good, what):
    args, parts = OPTION_CASES[what]
    expect_error(args[:1] + ["--images", good] + args[1:], parts, what)


def test_missing_file(tmp):
    p = os.path.join(tmp, "missing.npy")
    expect_error(["spectrum", "--images", p], ["missing.npy", "cannot open"], "missing file")
    # An error of the whole file names no byte offset (there is no byte of it to name).
    rc, _, err = c.run(["spectrum", "--images", p])
    assert rc == 2 and err.startswith(f"recalign: {p}: cannot open: "), err


def test_project_shape_mismatch(tmp, good):
    expect_error(["project", "--images", good, "--image-shape", "3,3,1", "--out", os.path.join(tmp, "p.png")],
                 ["--image-shape", "10"], "project shape mismatch")


def test_info_on_a_non_checkpoint(good):
    expect_error(["info", good], [good, "magic"], "info on a non-checkpoint")


def test_no_command():
    rc, out, err = c.run([])
    assert rc == 2 and err.strip(), f"no command: exit {rc}"


# --- corrupt checkpoints
@pytest.fixture(scope="module")
def checkpoint_bytes(tmp, good):
    ck = os.path.join(tmp, "run.ckpt")
    c.run(["spectrum", "--images", good, "--checkpoint", ck, "--quiet"], check_rc=0)
    return open(ck, "rb").read()


@pytest.mark.parametrize("command", [["info"], ["spectrum", "--from"]], ids=["info", "from"])
def test_truncated_checkpoint(tmp, checkpoint_bytes, command):
    p = write(os.path.join(tmp, "trunc.ckpt"), checkpoint_bytes[:len(checkpoint_bytes) // 2])
    expect_error(command + [p], [p, "truncated"], f"truncated checkpoint via {command}")


def test_flipped_checkpoint_byte(tmp, checkpoint_bytes):
    blob = checkpoint_bytes
    p = write(os.path.join(tmp, "flip.ckpt"), blob[:200] + bytes([blob[200] ^ 0x40]) + blob[201:])
    expect_error(["spectrum", "--from", p], [p, "checksum"], "flipped byte in checkpoint")


# --- --help everywhere
@pytest.mark.parametrize("cmd", [[], ["align"], ["spectrum"], ["project"], ["merge"], ["info"]],
                         ids=["top", "align", "spectrum", "project", "merge", "info"])
def test_help(cmd):
    rc, out, err = c.run(cmd + ["--help"])
    assert rc == 0 and "--help" in out and ("Usage" in out or "usage" in out.lower()), f"{cmd} --help: exit {rc}"


@functools.lru_cache(maxsize=None)
def rss_bound_kb(limit_kb):
    """`limit_kb`; under AddressSanitizer (scripts/test_sanitized.sh) the runtime's shadow memory and
    quarantine add to every process whatever it does, so there the bound is `limit_kb` above the
    peak RSS of `recalign --version` (as tests/limits/limits_cli.py does)."""
    with open(c.RECALIGN, "rb") as f:
        if b"__asan_init" not in f.read():
            return limit_kb
    rc, _, _, base_kb = c.run_rss(["--version"])
    assert rc == 0
    return base_kb + limit_kb


# --- bounded memory on an input far larger than a batch: 256 MiB of float32 or of uint8
# (sparse files); the rows reach the accumulator in their own type, scaled there
@pytest.mark.parametrize("descr,cols", [("<f4", 64), ("|u1", 256)], ids=["f4", "u1"])
def test_bounded_memory_on_a_large_file(tmp, descr, cols):
    big = os.path.join(tmp, f"big_{descr[1:]}.npy")
    rows = 1 << 20
    with open(big, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": descr, "fortran_order": False, "shape": (rows, cols)})
        f.truncate(f.tell() + rows * cols * np.dtype(descr).itemsize)
    rc, out, err, kb = c.run_rss(["spectrum", "--images", big, "--batch", "4096", "--scale", "1/255", "--json",
                                  "--quiet"])
    assert rc == 0, f"big file: exit {rc} {err}"
    bound = rss_bound_kb(64 * 1024)
    assert kb < bound, f"big file (256 MiB of {descr}): max RSS {kb} KiB, expected < {bound} KiB"
    print(f"256 MiB input of {descr}: max RSS {kb / 1024:.1f} MiB")


# --- --memory: the budget a run is refused against before reading, and the one the exact
# eigensolver spends (dsyevd where its 2 D x D workspace fits beside the 3 D x D, else dsyevr)
def test_memory_budget_refuses_and_chooses_the_solver(tmp, labels):
    import json
    d = 256  # N = 200 < D rows: the zero cluster where the two solvers differ most in speed
    x = c.write_npy(os.path.join(tmp, "budget.npy"), np.hstack([X, rng.normal(size=(N, d - D))]))
    expect_error(["align", "--images", x, "--labels", labels, "--memory", "0.001"],
                 [x, "--memory is", "GiB", "--method fd"], "--memory below 3 D x D")
    # 3 D x D = 1.5 MiB, the batch (200 rows as read and widened: 0.8 MiB) and the class
    # statistics: 2.5 MiB passes, as the default does (align consumes its accumulator, so dsyevd
    # fits both; spectrum computes values only: the two drivers themselves are compared in
    # tests/spectral/test_eigen.cpp)
    res = []
    for extra in ([], ["--memory", str(2.5 / 1024)]):
        for cmd in ("spectrum", "align"):
            rc, out, err = c.run([cmd, "--images", x, "--labels", labels, "--json", "--quiet"] + extra, check_rc=0)
            res.append(json.loads(out))
    for a, b in ((res[0], res[2]), (res[1], res[3])):
        ea, eb = np.array(a["eigenvalues"]), np.array(b["eigenvalues"])
        assert np.max(np.abs(ea - eb)) <= 1e-12 * ea[0]
    ca, cb = np.array(res[1]["alignment"]), np.array(res[3]["alignment"])
    assert np.max(np.abs(ca - cb)) <= 1e-10


# --- the exact route's peak stays within the 3 D x D its estimate counts (and the process's own
# buffers): the accumulator's per-batch scratch (for u8 rows a P x P float scatter, half a D x D)
# was still held while the eigensolver ran. On these 1,500 rows, measured by /usr/bin/time: 3.11
# D x D above `recalign --version` (2026-12-05). The 2.52 this comment gave before was measured
# through a fork of this NumPy-loaded process, whose pages inflated the `--version` baseline
# (cli_common.peak_rss_run); by that measure the held scratch gave 3.06, i.e. about 3.65 now.
def test_exact_align_peak_is_the_three_matrices_it_counts(tmp):
    if c.sanitized():
        pytest.skip("ASan's shadow memory scales with the process's own")
    d, rows = 3072, 1500
    x, y = os.path.join(tmp, "peak.u8"), os.path.join(tmp, "peak_y.npy")
    np.random.default_rng(5).integers(0, 256, size=(rows, d), dtype=np.uint8).tofile(x)
    np.save(y, np.arange(rows) % 3)
    _, _, _, base_kb = c.run_rss(["--version"])
    rc, _, err, kb = c.run_rss(["align", "--images", x, "--format", "raw", "--raw-shape", f"{rows},{d}", "--labels", y,
                                "--json", "--quiet"])
    assert rc == 0, err
    matrices = (kb - base_kb) / (d * d * 8 / 1024)
    print(f"align, D = {d}, u8: peak {matrices:.2f} D x D above `recalign --version`")
    assert matrices <= 3.3, f"peak {matrices:.2f} D x D"


# --- spectrum finds the exact eigenvalues in the moments' own storage: 2 D x D (with a u8
# batch's float scatter) and the batch, not the 3 D x D of the analyses with eigenvectors
def test_spectrum_counts_the_memory_of_eigenvalues_alone(tmp):
    d, rows = 1024, 64
    x, y = os.path.join(tmp, "values.u8"), os.path.join(tmp, "values_y.npy")
    np.random.default_rng(3).integers(0, 256, size=(rows, d), dtype=np.uint8).tofile(x)
    np.save(y, np.arange(rows) % 3)
    args = ["--images", x, "--format", "raw", "--raw-shape", f"{rows},{d}", "--memory", str(20 / 1024)]  # 20 MiB
    c.run(["spectrum"] + args + ["--json", "--quiet"], check_rc=0)  # 16 MiB and 1 MiB of batch
    expect_error(["align", "--labels", y] + args, ["needs about 0.02", "--memory is 0.02 GiB"], "align: 24 MiB")


# --- denoise's budget: 3 D x D with dsyevd for any number of closed-form noises (each solved
# beside Sxx alone; Sxx waits in $TMPDIR while C is decomposed, each V* until the clean
# eigenvectors exist: unlinked files, gone after the run and after an error); a $TMPDIR that
# cannot hold one D x D per noise is refused before any data is read
def test_denoise_memory_budget(tmp, labels):
    import json
    d = 256  # 16 x 16 images, N = 200 < D rows; one D x D = 0.5 MiB
    x = c.write_npy(os.path.join(tmp, "budget_denoise.npy"), np.hstack([X, rng.normal(size=(N, d - D))]))
    base = ["denoise", "--images", x, "--labels", labels, "--image-shape", "16,16,1", "--json", "--quiet",
            "--noise", "mask:patch=4x4,ratio=0.5"]
    two = base + ["--noise", "dropout:ratio=0.3", "--noise", "gaussian:sigma=0.1"]
    spill = os.path.join(tmp, "spill")
    os.makedirs(spill)
    env = {"TMPDIR": spill}
    # 3 D x D, the batch while streaming (0.8 MiB) and the class statistics: 2.5 MiB holds three
    # noises, dsyevd and all
    runs = [json.loads(c.run(cmd, env=env, check_rc=0)[1]) for cmd in (base, two + ["--memory", str(2.5 / 1024)])]
    assert os.listdir(spill) == []
    for k in ("alignment", "impact"):  # the mask's numbers do not depend on the other noises
        a, b = np.array(runs[0]["noises"][0][k]), np.array(runs[1]["noises"][0][k])
        assert a.shape == b.shape and np.max(np.abs(a - b)) <= 1e-10 * np.max(np.abs(a)), k
    expect_error(two + ["--memory", str(1.4 / 1024)], ["denoise", "--memory is", "GiB"], "below 3 D x D")
    need = str(2 * d * d * 8)  # two noises solved: two D x D on disk at once
    rc, out, err = c.run(two, env={"TMPDIR": spill, "RECALIGN_TEST_SPILL_FREE": str(2 * d * d * 8 - 1)})
    c.assert_one_line_error(rc, err, [spill, "$TMPDIR", need, "bytes free"], "a $TMPDIR without room")
    missing = os.path.join(tmp, "no-such-dir")
    rc, out, err = c.run(two, env={"TMPDIR": missing})
    c.assert_one_line_error(rc, err, [missing, "TMPDIR"], "a $TMPDIR that does not exist")
    c.run(base, env={"TMPDIR": spill, "RECALIGN_TEST_SPILL_FREE": str(d * d * 8)}, check_rc=0)
    assert os.listdir(spill) == []
