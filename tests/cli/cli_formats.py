"""Every reader format and element type through `recalign spectrum/align --json`, against an
independent NumPy computation: .npy versions 1-3, both byte orders, C and Fortran order,
bool/int/uint/float16/32/64; IDX u8/i8/i16/i32/f32/f64 plain and gzip; raw u8/f4/f8; labels
from IDX and .npy; --skip/--limit/--scale/--batch."""
import json
import os

import numpy as np

import cli_common as c

tmp = c.init()
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
    if j is None:
        return
    lam, expl = c.spectrum_oracle(x, centered)
    c.check(j["n"] == x.shape[0] and j["d"] == x.shape[1], f"{what}: n/d {j['n']}/{j['d']}")
    c.check(j["centered"] == centered and j["method"] == "exact", f"{what}: centered/method fields")
    c.close(j["eigenvalues"], lam, 1e-9, f"{what}: eigenvalues", atol=1e-10 * max(lam[0], 1))
    c.close(j["explained"], expl, 1e-9, f"{what}: explained", atol=1e-10)


# .npy: every version, byte order, memory order and element type
types = ["u1", "i1", "i2", "i4", "i8", "u2", "u4", "u8", "f2", "f4", "f8"]
for version in [(1, 0), (2, 0), (3, 0)]:
    for order in "<>":
        for fortran in (False, True):
            for t in types:
                dt = np.dtype(t).newbyteorder(order) if np.dtype(t).itemsize > 1 else np.dtype(t)
                p = os.path.join(tmp, f"x_v{version[0]}_{'be' if order == '>' else 'le'}_{'F' if fortran else 'C'}_{t}.npy")
                c.write_npy(p, X.astype(dt), version=version, fortran=fortran)
                check_spectrum(["--images", p, "--batch", "64"], os.path.basename(p))
# bool
B = X > 50
p = os.path.join(tmp, "bool.npy")
c.write_npy(p, B)
check_spectrum(["--images", p], "bool .npy", x=B.astype(float))
# 3-d arrays: Fortran order must give the same rows as C order (row = C-order flattening)
X3 = X.reshape(N, 3, 4)
for fortran in (False, True):
    p = os.path.join(tmp, f"x3_{'F' if fortran else 'C'}.npy")
    c.write_npy(p, X3.astype(">f8"), fortran=fortran)
    check_spectrum(["--images", p, "--batch", "7"], os.path.basename(p))
# Fortran order must deliver the rows themselves, not only an invariant: compare projections
p_c, p_f = os.path.join(tmp, "x3_C.npy"), os.path.join(tmp, "x3_F.npy")
j1 = c.run_json(["spectrum", "--images", p_c, "--skip", "17", "--limit", "5", "--no-center"])
j2 = c.run_json(["spectrum", "--images", p_f, "--skip", "17", "--limit", "5", "--no-center"])
if j1 and j2:
    c.check(j1["eigenvalues"] == j2["eigenvalues"], "C and Fortran order 3-d .npy differ on rows 17..22")
    c.close(j2["eigenvalues"], c.spectrum_oracle(X[17:22], False)[0], 1e-9, "Fortran rows 17..22",
            atol=1e-9 * lam_u[0])

# IDX: every type, plain and gzip (detected by content, any name)
for t in [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]:
    for gz in (False, True):
        p = os.path.join(tmp, f"x_{t.__name__}{'.gz' if gz else ''}.idx")
        c.write_idx(p, X.astype(t).reshape(N, 3, 4), gz=gz)
        check_spectrum(["--images", p, "--batch", "50"], os.path.basename(p))

# raw: u8 / f4 / f8, shape given; N = 0 infers the rows
for t, name in [(np.uint8, "u8"), (np.float32, "f4"), (np.float64, "f8")]:
    p = os.path.join(tmp, f"x.{name}.raw")
    X.astype(np.dtype(t).newbyteorder("<")).tofile(p)
    check_spectrum(["--images", p, "--format", "raw", "--raw-shape", f"{N},{D}", "--raw-dtype", name],
                   f"raw {name}")
    check_spectrum(["--images", p, "--raw-shape", f"0,{D}", "--raw-dtype", name], f"raw {name}, N inferred")

# labels from IDX and from .npy (several integer types, both byte orders) -> align
xp = os.path.join(tmp, "x_v1_le_C_f8.npy")
label_files = []
p = os.path.join(tmp, "y.idx")
c.write_idx(p, Y.astype(np.uint8))
label_files.append(p)
p = os.path.join(tmp, "y.idx.gz")
c.write_idx(p, Y.astype(np.int32), gz=True)
label_files.append(p)
for t in ["<i8", ">i4", "u1", "<u2", ">i2"]:
    p = os.path.join(tmp, f"y_{t.replace('<', 'le').replace('>', 'be')}.npy")
    c.write_npy(p, Y.astype(t))
    label_files.append(p)
for measure in ["paper", "rank", "fit"]:
    for centered in (False, True):
        lam, curve = c.alignment_oracle(X, Y, C, centered=centered, measure=measure)
        for lp in label_files if (measure == "paper" and not centered) else label_files[:1]:
            args = ["align", "--images", xp, "--labels", lp, "--measure", measure, "--batch", "33"]
            if centered:
                args.append("--center")
            j = c.run_json(args)
            if j is None:
                continue
            what = f"align {measure} {'centered' if centered else 'uncentered'} labels {os.path.basename(lp)}"
            for k in ["n", "d", "classes", "measure", "centered", "method", "eigenvalues", "alignment"]:
                c.check(k in j, f"{what}: field {k} missing")
            c.check(j["n"] == N and j["d"] == D and j["classes"] == C, f"{what}: n/d/classes")
            c.check(j["measure"] == measure and j["centered"] == centered and j["method"] == "exact", f"{what}: fields")
            c.close(j["eigenvalues"][:len(lam)], lam, 1e-9, f"{what}: eigenvalues", atol=atol)
            c.close(j["alignment"], curve, 1e-8, f"{what}: alignment curve", atol=1e-10)
            c.check(all(a <= b + 1e-12 for a, b in zip(j["alignment"], j["alignment"][1:])),
                    f"{what}: curve not non-decreasing")

# --skip / --limit / --scale / --batch
check_spectrum(["--images", xp, "--skip", "50", "--limit", "100"], "skip 50 limit 100", x=X[50:150])
check_spectrum(["--images", xp, "--scale", "1/255", "--batch", "1"], "scale 1/255 batch 1", x=X / 255)
check_spectrum(["--images", xp, "--scale", "0.5", "--batch", "1000"], "scale 0.5", x=X * 0.5, centered=False)
j = c.run_json(["spectrum", "--images", xp, "--batch", "7"])
j2 = c.run_json(["spectrum", "--images", xp, "--batch", "300"])
if j and j2:
    c.close(j["eigenvalues"], j2["eigenvalues"], 1e-10, "batch 7 vs 300", atol=atol)

# every command on one file of each format (IDX .gz, raw f4, Fortran-order big-endian .npy)
Xi = X.reshape(N, 3, 4)
fi = os.path.join(tmp, "all.idx.gz")
c.write_idx(fi, Xi.astype(np.uint8), gz=True)
fr = os.path.join(tmp, "all.raw")
X.astype("<f4").tofile(fr)
fn = os.path.join(tmp, "all.npy")
c.write_npy(fn, X.astype(">f8"), fortran=True)
yl = label_files[0]
ref_align = c.alignment_oracle(X, Y, C)[1]
for name, args in [("idx.gz", ["--images", fi]), ("raw", ["--images", fr, "--raw-shape", f"{N},{D}", "--raw-dtype", "f4"]),
                   ("npy F >f8", ["--images", fn])]:
    d = args + ["--labels", yl, "--batch", "64"]
    j = c.run_json(["align"] + d)
    if j:
        c.close(j["alignment"], ref_align, 1e-8, f"align on {name}", atol=1e-10)
    t = c.run_json(["tradeoff"] + d + ["--lambda", "0.5,2", "--k", 2])
    c.check(t is not None and len(t) == 2, f"tradeoff on {name}")
    n = c.run_json(["denoise"] + d + ["--image-shape", "3,4,1", "--noise", "mask:patch=1x2,ratio=0.5"])
    c.check(n is not None and len(n["noises"]) == 1, f"denoise on {name}")
    png = os.path.join(tmp, "grid.png")
    rc, out, err = c.run(["project"] + d + ["--image-shape", "3,4,1", "--count", 4, "--out", png, "--quiet"])
    c.check(rc == 0 and open(png, "rb").read(4) == b"\x89PNG", f"project on {name}: {err}")
    ck = [os.path.join(tmp, f"part{i}.ckpt") for i in range(2)]
    for i, rng_args in enumerate([["--limit", 120], ["--skip", 120]]):
        if os.path.exists(ck[i]):
            os.remove(ck[i])
        c.run(["spectrum"] + d + rng_args + ["--checkpoint", ck[i], "--quiet"], check_rc=0)
    merged = os.path.join(tmp, "merged.ckpt")
    c.run(["merge", ck[0], ck[1], "-o", merged], check_rc=0)
    rc, out, err = c.run(["info", merged, "--json"])
    c.check(rc == 0 and json.loads(out)["n"] == N, f"merge/info on {name}")
    s = c.run_json(["spectrum", "--from", merged])
    if s:
        c.close(s["eigenvalues"], lam_c, 1e-9, f"merged spectrum on {name}", atol=atol)

c.finish("cli_formats")
