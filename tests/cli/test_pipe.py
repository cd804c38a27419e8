"""Raw rows from a pipe (`--images -` and /dev/stdin): read once, front to back, against the
NumPy oracle and the same rows from a file; --skip/--limit on a pipe; checkpoints of a piped
run analysed with --from; what needs a second read (--resume, --passes 2) or a length
(N = 0) refused before any row is read; a pipe that ends early names the byte offset."""
import os
import subprocess

import numpy as np

import cli_common as c

rng = np.random.default_rng(17)
N, D, C = 240, 10, 3
X = rng.integers(0, 256, size=(N, D)).astype(np.uint8)
Y = (X[:, 0] % C).astype(np.int64)
ROWS = X.tobytes()


def piped(args, data=ROWS):
    p = subprocess.run([c.RECALIGN] + [str(a) for a in args], input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    return p.returncode, p.stdout.decode(), p.stderr.decode(errors="replace")


def piped_json(args):
    rc, out, err = piped(list(args) + ["--json", "--quiet"])
    assert rc == 0, err
    import json
    return json.loads(out)


def test_spectrum_from_stdin_matches_oracle_and_file(tmp):
    f = os.path.join(tmp, "x.raw")
    X.tofile(f)
    from_file = c.run_json(["spectrum", "--images", f, "--raw-shape", f"{N},{D}", "--batch", "64"])
    for name in ["-", "/dev/stdin"]:
        j = piped_json(["spectrum", "--images", name, "--raw-shape", f"{N},{D}", "--batch", "64"])
        lam, expl = c.spectrum_oracle(X.astype(np.float64), True)
        c.assert_close(j["eigenvalues"], lam, 1e-9, f"{name}: eigenvalues", atol=1e-10 * lam[0])
        assert j["eigenvalues"] == from_file["eigenvalues"], f"{name}: not the file's result"
        assert j["input"][0]["images"] == name


def test_skip_limit_and_labels_from_a_file(tmp):
    y = c.write_npy(os.path.join(tmp, "y.npy"), Y)
    j = piped_json(["align", "--images", "-", "--raw-shape", f"{N},{D}", "--labels", y, "--skip", "40",
                    "--limit", "150"])
    f = os.path.join(tmp, "x.raw")
    X.tofile(f)
    ref = c.run_json(["align", "--images", f, "--raw-shape", f"{N},{D}", "--labels", y, "--skip", "40",
                      "--limit", "150"])
    assert j["n"] == 150 and j["alignment"] == ref["alignment"]


def test_checkpoints_of_a_piped_run(tmp):
    ck = os.path.join(tmp, "pipe.ckpt")
    j = piped_json(["spectrum", "--images", "-", "--raw-shape", f"{N},{D}", "--batch", "50",
                    "--checkpoint", ck, "--checkpoint-every", "100"])
    assert c.run_json(["spectrum", "--from", ck])["eigenvalues"] == j["eigenvalues"]


def test_refusals_before_reading(tmp):
    for args, words in [(["--raw-shape", f"0,{D}"], "--raw-shape N,D"),
                        (["--raw-shape", f"{N},{D}", "--checkpoint", "/tmp/never.ckpt", "--resume"], "--resume"),
                        (["--raw-shape", f"{N},{D}", "--method", "nystrom", "--rank", "2", "--passes", "2"],
                         "--passes 2")]:
        rc, out, err = piped(["spectrum", "--images", "-", "--quiet"] + args)
        assert rc == 2 and words in err and "pipe" in err, err
    # align on a sketch route verifies by default: a second read, refused up front.
    y = c.write_npy(os.path.join(tmp, "y.npy"), Y)
    for args, words in [([], "--no-verify")]:
        rc, out, err = piped(["align", "--images", "-", "--raw-shape", f"{N},{D}", "--labels", y, "--method",
                              "nystrom", "--rank", "2", "--quiet"] + args)
        assert rc == 2 and words in err and "pipe" in err, err
    assert not os.path.exists("/tmp/never.ckpt")
    j = piped_json(["align", "--images", "-", "--raw-shape", f"{N},{D}", "--labels", y, "--method", "nystrom",
                    "--rank", "2", "--no-verify"])
    assert j["n"] == N and j["method"] == "nystrom"


def test_pipe_ending_early_names_the_offset():
    rc, out, err = piped(["spectrum", "--images", "-", "--raw-shape", f"{N},{D}", "--quiet"], ROWS[:D * 100 + 3])
    assert rc == 2 and f"byte offset {D * 100 + 3}" in err and "pipe ended" in err, err
