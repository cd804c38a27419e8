"""Every reader format and element type through `recalign spectrum/align --json`, against an
independent NumPy computation: .npy versions 1-3, both byte orders, C and Fortran order,
bool/int/uint/float16/32/64; IDX u8/i8/i16/i32/f32/f64 plain and gzip; raw u8/f4/f8; labels
from IDX and .npy; --skip/--limit/--scale/--batch."""
import json
import os

import numpy as np
import pytest

import cli_common as c

rng = np.random.default_rng(5)
N, D, C = 300, 12, 5
# Small non-negative integers: exactly representable in every type (i8 and float16 included).
X = rng.integers(0, 100, size=(N, D)).astype(np.float64)
X[:, 3] += X[:, 1]  # some correlation
X[:, 3] = np.minimum(X[:, 3], 120)
Y = (X[:, 0] // 20).astype(np.int64) % C
Y[:C] = np.arange(C)
lam_c, expl_c = c.spectrum_oracle(X, centered=True)
lam_u, _ = c.spectrum_oracle(X, centered=False)
atol = 1e-10 * lam_u[0]


def check_spectrum(args, what, x=X, centered=True):
    j = c.run_json(["spectrum"] + args + ([] if centered else ["--no-center"]))
    lam, expl = c.spectrum_oracle(x, centered)
    assert j["n"] == x.shape[0] and j["d"] == x.shape[1], f"{what}: n/d {j['n']}/{j['d']}"
    assert j["centered"] == centered and j["method"] == "exact", f"{what}: centered/method fields"
    c.assert_close(j["eigenvalues"], lam, 1e-9, f"{what}: eigenvalues", atol=1e-10 * max(lam[0], 1))
    c.assert_close(j["explained"], expl, 1e-9, f"{what}: explained", atol=1e-10)


@pytest.fixture(scope="module")
def xp(tmp):
    """X as a little-endian float64 .npy (version 1, C order)."""
    return c.write_npy(os.path.join(tmp, "x_f8.npy"), X.astype("<f8"))


@pytest.fixture(scope="module")
def label_files(tmp):
    """Y as IDX u8, IDX.gz i32 and .npy of several integer types and both byte orders."""
    files = []
    p = os.path.join(tmp, "y.idx")
    c.write_idx(p, Y.astype(np.uint8))
    files.append(p)
    p = os.path.join(tmp, "y.idx.gz")
    c.write_idx(p, Y.astype(np.int32), gz=True)
    files.append(p)
    for t in ["<i8", ">i4", "u1", "<u2", ">i2"]:
        p = os.path.join(tmp, f"y_{t.replace('<', 'le').replace('>', 'be')}.npy")
        c.write_npy(p, Y.astype(t))
        files.append(p)
    return files


@pytest.fixture(scope="module")
def x3_files(tmp):
    """X reshaped to N x 3 x 4, big-endian float64 .npy, in C and in Fortran order."""
    files = {}
    for fortran in (False, True):
        p = os.path.join(tmp, f"x3_{'F' if fortran else 'C'}.npy")
        c.write_npy(p, X.reshape(N, 3, 4).astype(">f8"), fortran=fortran)
        files[fortran] = p
    return files


# .npy: every version, byte order, memory order and element type
@pytest.mark.parametrize("t", ["u1", "i1", "i2", "i4", "i8", "u2", "u4", "u8", "f2", "f4", "f8"])
@pytest.mark.parametrize("fortran", [False, True], ids=["C", "F"])
@pytest.mark.parametrize("order", ["<", ">"], ids=["le", "be"])
@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)], ids=["v1", "v2", "v3"])
def test_npy(tmp, version, order, fortran, t):
    dt = np.dtype(t).newbyteorder(order) if np.dtype(t).itemsize > 1 else np.dtype(t)
    p = os.path.join(tmp, f"x_v{version[0]}_{'be' if order == '>' else 'le'}_{'F' if fortran else 'C'}_{t}.npy")
    c.write_npy(p, X.astype(dt), version=version, fortran=fortran)
    check_spectrum(["--images", p, "--batch", "64"], os.path.basename(p))


def test_npy_bool(tmp):
    B = X > 50
    p = os.path.join(tmp, "bool.npy")
    c.write_npy(p, B)
    check_spectrum(["--images", p], "bool .npy", x=B.astype(float))


@pytest.mark.parametrize("fortran", [False, True], ids=["C", "F"])
def test_npy_3d(x3_files, fortran):
    """3-d arrays: Fortran order must give the same rows as C order (row = C-order flattening)."""
    p = x3_files[fortran]
    check_spectrum(["--images", p, "--batch", "7"], os.path.basename(p))


def test_npy_3d_fortran_rows(x3_files):
    """Fortran order must deliver the rows themselves, not only an invariant: compare projections."""
    j1 = c.run_json(["spectrum", "--images", x3_files[False], "--skip", "17", "--limit", "5", "--no-center"])
    j2 = c.run_json(["spectrum", "--images", x3_files[True], "--skip", "17", "--limit", "5", "--no-center"])
    assert j1["eigenvalues"] == j2["eigenvalues"], "C and Fortran order 3-d .npy differ on rows 17..22"
    c.assert_close(j2["eigenvalues"], c.spectrum_oracle(X[17:22], False)[0], 1e-9, "Fortran rows 17..22",
                   atol=1e-9 * lam_u[0])


# IDX: every type, plain and gzip (detected by content, any name)
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("t", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64],
                         ids=lambda t: t.__name__)
def test_idx(tmp, t, gz):
    p = os.path.join(tmp, f"x_{t.__name__}{'.gz' if gz else ''}.idx")
    c.write_idx(p, X.astype(t).reshape(N, 3, 4), gz=gz)
    check_spectrum(["--images", p, "--batch", "50"], os.path.basename(p))


# raw: u8 / f4 / f8, shape given; N = 0 infers the rows
@pytest.mark.parametrize("infer_rows", [False, True], ids=["shape", "N_inferred"])
@pytest.mark.parametrize("t,name", [(np.uint8, "u8"), (np.float32, "f4"), (np.float64, "f8")], ids=["u8", "f4", "f8"])
def test_raw(tmp, t, name, infer_rows):
    p = os.path.join(tmp, f"x.{name}.raw")
    X.astype(np.dtype(t).newbyteorder("<")).tofile(p)
    if infer_rows:
        check_spectrum(["--images", p, "--raw-shape", f"0,{D}", "--raw-dtype", name], f"raw {name}, N inferred")
    else:
        check_spectrum(["--images", p, "--format", "raw", "--raw-shape", f"{N},{D}", "--raw-dtype", name],
                       f"raw {name}")


# labels from IDX and from .npy (several integer types, both byte orders) -> align; every
# label file for the paper's uncentered curve, the first one for the other measures
ALIGN_CASES = [("paper", False, i) for i in range(7)] + \
              [(m, ctr, 0) for m in ["paper", "rank", "fit"] for ctr in (False, True) if (m, ctr) != ("paper", False)]


@pytest.mark.parametrize("measure,centered,label_index", ALIGN_CASES,
                         ids=[f"{m}-{'centered' if ctr else 'uncentered'}-labels{i}" for m, ctr, i in ALIGN_CASES])
def test_align_labels(xp, label_files, measure, centered, label_index):
    lp = label_files[label_index]
    lam, curve = c.alignment_oracle(X, Y, C, centered=centered, measure=measure)
    args = ["align", "--images", xp, "--labels", lp, "--measure", measure, "--batch", "33"]
    if centered:
        args.append("--center")
    j = c.run_json(args)
    what = f"align {measure} {'centered' if centered else 'uncentered'} labels {os.path.basename(lp)}"
    for k in ["n", "d", "classes", "measure", "centered", "method", "eigenvalues", "alignment"]:
        assert k in j, f"{what}: field {k} missing"
    assert j["n"] == N and j["d"] == D and j["classes"] == C, f"{what}: n/d/classes"
    assert j["measure"] == measure and j["centered"] == centered and j["method"] == "exact", f"{what}: fields"
    c.assert_close(j["eigenvalues"][:len(lam)], lam, 1e-9, f"{what}: eigenvalues", atol=atol)
    c.assert_close(j["alignment"], curve, 1e-8, f"{what}: alignment curve", atol=1e-10)
    assert all(a <= b + 1e-12 for a, b in zip(j["alignment"], j["alignment"][1:])), \
        f"{what}: curve not non-decreasing"


# --skip / --limit / --scale / --batch
@pytest.mark.parametrize("args,what,x,centered", [
    (["--skip", "50", "--limit", "100"], "skip 50 limit 100", X[50:150], True),
    (["--scale", "1/255", "--batch", "1"], "scale 1/255 batch 1", X / 255, True),
    (["--scale", "0.5", "--batch", "1000"], "scale 0.5", X * 0.5, False),
], ids=["skip-limit", "scale-fraction", "scale-uncentered"])
def test_row_range_and_scale(xp, args, what, x, centered):
    check_spectrum(["--images", xp] + args, what, x=x, centered=centered)


def test_batch_size_does_not_matter(xp):
    j = c.run_json(["spectrum", "--images", xp, "--batch", "7"])
    j2 = c.run_json(["spectrum", "--images", xp, "--batch", "300"])
    c.assert_close(j["eigenvalues"], j2["eigenvalues"], 1e-10, "batch 7 vs 300", atol=atol)


# every command on one file of each format (IDX .gz, raw f4, Fortran-order big-endian .npy)
@pytest.fixture(scope="module")
def all_formats(tmp, label_files):
    fi = os.path.join(tmp, "all.idx.gz")
    c.write_idx(fi, X.reshape(N, 3, 4).astype(np.uint8), gz=True)
    fr = os.path.join(tmp, "all.raw")
    X.astype("<f4").tofile(fr)
    fn = os.path.join(tmp, "all.npy")
    c.write_npy(fn, X.astype(">f8"), fortran=True)
    return {name: args + ["--labels", label_files[0], "--batch", "64"] for name, args in [
        ("idx.gz", ["--images", fi]), ("raw", ["--images", fr, "--raw-shape", f"{N},{D}", "--raw-dtype", "f4"]),
        ("npy F >f8", ["--images", fn])]}


FORMATS = ["idx.gz", "raw", "npy F >f8"]


@pytest.mark.parametrize("name", FORMATS)
def test_every_command_align(all_formats, name):
    j = c.run_json(["align"] + all_formats[name])
    c.assert_close(j["alignment"], c.alignment_oracle(X, Y, C)[1], 1e-8, f"align on {name}", atol=1e-10)


@pytest.mark.parametrize("name", FORMATS)
def test_every_command_tradeoff(all_formats, name):
    t = c.run_json(["tradeoff"] + all_formats[name] + ["--lambda", "0.5,2", "--k", 2])
    assert len(t) == 2, f"tradeoff on {name}"


@pytest.mark.parametrize("name", FORMATS)
def test_every_command_denoise(all_formats, name):
    n = c.run_json(["denoise"] + all_formats[name] + ["--image-shape", "3,4,1", "--noise", "mask:patch=1x2,ratio=0.5"])
    assert len(n["noises"]) == 1, f"denoise on {name}"


@pytest.mark.parametrize("name", FORMATS)
def test_every_command_project(tmp, all_formats, name):
    png = os.path.join(tmp, f"grid_{name.replace(' ', '_')}.png")
    rc, out, err = c.run(["project"] + all_formats[name] + ["--image-shape", "3,4,1", "--count", 4, "--out", png, "--quiet"])
    assert rc == 0 and open(png, "rb").read(4) == b"\x89PNG", f"project on {name}: {err}"


@pytest.mark.parametrize("name", FORMATS)
def test_every_command_merge_info_from(tmp, all_formats, name):
    d = all_formats[name]
    tag = name.replace(" ", "_")
    ck = [os.path.join(tmp, f"part{i}_{tag}.ckpt") for i in range(2)]
    for i, rng_args in enumerate([["--limit", 120], ["--skip", 120]]):
        c.run(["spectrum"] + d + rng_args + ["--checkpoint", ck[i], "--quiet"], check_rc=0)
    merged = os.path.join(tmp, f"merged_{tag}.ckpt")
    c.run(["merge", ck[0], ck[1], "-o", merged], check_rc=0)
    rc, out, err = c.run(["info", merged, "--json"])
    assert rc == 0 and json.loads(out)["n"] == N, f"merge/info on {name}"
    s = c.run_json(["spectrum", "--from", merged])
    c.assert_close(s["eigenvalues"], lam_c, 1e-9, f"merged spectrum on {name}", atol=atol)


# --precision: the float32 kernels of the exact route and of Nyström, for float32 input
@pytest.fixture(scope="module")
def f32_rows(tmp):
    """Gaussian float32 rows (not small integers, so single precision rounds) as <f4 and as u1."""
    g = np.random.default_rng(12)
    x = (g.normal(size=(2000, 16)) * np.linspace(1, 4, 16) + 3).astype("<f4")
    p4, p1 = os.path.join(tmp, "gauss_f4.npy"), os.path.join(tmp, "gauss_u1.npy")
    c.write_npy(p4, x)
    c.write_npy(p1, np.clip(x * 20, 0, 255).astype(np.uint8))
    return p4, p1


PRECISION_METHODS = {"exact": [], "nystrom": ["--method", "nystrom", "--rank", 4, "--seed", 2],
                     "fd": ["--method", "fd", "--rank", 4]}


@pytest.mark.parametrize("method", ["exact", "nystrom", "fd"])
def test_f32_kernels_on_float32_input(f32_rows, method):
    """FD's single-precision shrinks run for any input type (its batches are centered in
    double first); their rounding accumulates over the shrinks: 1e-4 there."""
    for images in list(f32_rows) if method == "fd" else [f32_rows[0]]:
        args = ["spectrum", "--images", images, "--batch", "500"] + PRECISION_METHODS[method]
        f64 = c.run_json(args + ["--precision", "f64"])
        f32 = c.run_json(args + ["--precision", "f32-kernels"])
        assert c.run_json(args)["eigenvalues"] == f64["eigenvalues"], "the default is not --precision f64"
        assert f32["eigenvalues"] != f64["eigenvalues"], f"{method}: --precision f32-kernels took the double path"
        c.assert_close(f32["eigenvalues"], f64["eigenvalues"], 1e-4 if method == "fd" else 1e-5,
                       f"{method}: f32 kernels vs double", atol=1e-6 * f64["eigenvalues"][0])


def test_exact_route_on_uint8_is_exact_at_any_precision(f32_rows, tmp):
    """uint8 input on the exact route takes the exact integer SSYRK whatever --precision says:
    the same bits either way; against the same pixels stored as float64 (the double path), other
    roundings of the same eigenvalues."""
    args = ["spectrum", "--images", f32_rows[1], "--batch", "500"]
    f64 = c.run_json(args + ["--precision", "f64"])
    f32 = c.run_json(args + ["--precision", "f32-kernels"])
    assert f32["eigenvalues"] == f64["eigenvalues"], "--precision selected the uint8 path"
    as_f8 = os.path.join(tmp, "gauss_u1_as_f8.npy")
    c.write_npy(as_f8, np.load(f32_rows[1]).astype("<f8"))
    double = c.run_json(["spectrum", "--images", as_f8, "--batch", "500"])
    assert double["eigenvalues"] != f64["eigenvalues"], "uint8 input took the double path"
    c.assert_close(f64["eigenvalues"], double["eigenvalues"], 1e-10, "uint8's exact path vs float64 rows",
                   atol=1e-12 * double["eigenvalues"][0])


def test_f32_kernels_nystrom_on_uint8(f32_rows):
    """Nyström's single-precision products take uint8 input too: not the same bits, the same
    eigenvalues to single-precision rounding (SGEMM of the centered blocks, Y in double)."""
    args = ["spectrum", "--images", f32_rows[1], "--batch", "500"] + PRECISION_METHODS["nystrom"]
    f64 = c.run_json(args + ["--precision", "f64"])
    f32 = c.run_json(args + ["--precision", "f32-kernels"])
    assert f32["eigenvalues"] != f64["eigenvalues"], "uint8 input took the double path"
    c.assert_close(f32["eigenvalues"], f64["eigenvalues"], 1e-5, "nystrom f32-kernels on uint8")


def test_precision_refuses_other_values(f32_rows):
    rc, out, err = c.run(["spectrum", "--images", f32_rows[0], "--precision", "f16"])
    c.assert_one_line_error(rc, err, ["--precision"], "--precision f16")
