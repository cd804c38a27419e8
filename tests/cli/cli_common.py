"""Helpers of the end-to-end tests of the recalign CLI: run the tool, write IDX / .npy /
raw files, and an independent NumPy computation of the quantities the tool reports
(written from MATH.md, not from the library).

The pytest modules (tests/cli/test_*.py) use the functions that raise AssertionError
(`run_json`, `assert_close`, `assert_refused`, `run(..., check_rc=...)`); conftest.py sets
RECALIGN. The scripts of tests/reliability still use the older FAILURES list (`init`,
`check`, `fail`, `one_line_error`, `finish`)."""
import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

RECALIGN = None  # absolute path of the recalign binary


def run(args, env=None, check_rc=None):
    """Runs recalign; returns (rc, stdout, stderr). With check_rc, asserts the exit status."""
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.run([RECALIGN] + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)
    out, err = p.stdout.decode(), p.stderr.decode(errors="replace")
    assert check_rc is None or p.returncode == check_rc, \
        f"recalign {' '.join(map(str, args))}: exit {p.returncode}, expected {check_rc}\nstderr: {err}"
    return p.returncode, out, err


def sanitized():
    """True for a binary built with AddressSanitizer (scripts/test_sanitized.sh): its shadow
    memory and quarantine add to a process's RSS whatever the process does."""
    with open(RECALIGN, "rb") as f:
        return b"__asan_init" in f.read()


# A child forked from this process (NumPy loaded: 200 MB or more) counts this process's pages in
# its peak RSS until it execs, so peaks are measured from a fresh small interpreter (no site, no
# NumPy) that forks the program and reads its own RUSAGE_CHILDREN; tests/limits/limits_cli.py too.
_FRESH = """
import os, resource, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
_, status = os.waitpid(pid, 0)
os.write(2, b"\\nRSS_KB %d\\n" % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def peak_rss_run(exe, args):
    """Runs EXE ARGS; returns (rc, stdout, stderr, peak RSS in KiB of that process alone)."""
    p = subprocess.run([sys.executable, "-S", "-I", "-c", _FRESH, exe] + [str(a) for a in args],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err, _, tail = p.stderr.decode("utf-8", "replace").rpartition("\nRSS_KB ")
    return p.returncode, p.stdout.decode(), err, int(tail.split()[0])


def run_rss(args):
    """Runs recalign and returns (rc, stdout, stderr, max RSS in KiB of that process)."""
    return peak_rss_run(RECALIGN, args)


def kill_then_resume(args, ck, when, every, what, timeout=60, delay_ms=5):
    """Runs `recalign ARGS --checkpoint CK --checkpoint-every EVERY` slowed down by delay_ms
    per batch, SIGKILLs it as soon as `when(segment)` holds for the checkpoint's first segment
    (as `info --json` reads it), then runs ARGS with --checkpoint CK --resume. Returns (`info
    --json` of the killed run's checkpoint, rc, stdout, stderr of the resume); asserts the kill
    happened (`what`: where it should have, for the message).

    Every new version of CK (a new inode, size or mtime: writes are atomic renames) is read
    while the process is stopped (SIGSTOP), and the process is either killed there or continued.
    So the run cannot move past the window `when` describes while `info` runs, however slow a
    sanitized `info` is; the tests only rely on the window spanning more than one checkpoint.
    `timeout` bounds the time the process runs, not the time it spends stopped."""
    import signal
    import time
    p = subprocess.Popen([RECALIGN] + [str(a) for a in args] + ["--checkpoint", ck, "--checkpoint-every", str(every),
                                                                 "--test-batch-delay-ms", str(delay_ms)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    killed = None
    seen = None
    running = 0.0
    try:
        while running < timeout and p.poll() is None:
            t0 = time.time()
            time.sleep(0.005)
            running += time.time() - t0
            try:
                st = os.stat(ck)
            except FileNotFoundError:
                continue
            version = (st.st_ino, st.st_size, st.st_mtime_ns)
            if version == seen:
                continue
            p.send_signal(signal.SIGSTOP)
            try:
                seen = version
                rc, out, _ = run(["info", ck, "--json"])
                if rc == 0:
                    doc = json.loads(out)
                    if when(doc["segments"][0]):
                        p.send_signal(signal.SIGKILL)
                        killed = doc
                        break
            finally:
                if killed is None and p.poll() is None:
                    p.send_signal(signal.SIGCONT)
    finally:
        if p.poll() is None and killed is None:
            p.kill()
        _, err = p.communicate()
    assert killed is not None, \
        f"never saw a checkpoint {what}: the run ended with exit {p.returncode} after {running:.1f} s of running, " \
        f"stderr: {err.decode(errors='replace')[-2000:]}"
    return (killed,) + run(list(args) + ["--checkpoint", ck, "--resume"])


def run_json(args, env=None):
    """`recalign ARGS --json --quiet`, asserting exit 0; the parsed document."""
    return json.loads(run(list(args) + ["--json", "--quiet"], env=env, check_rc=0)[1])


def close_error(a, b, rtol, msg, atol=0.0):
    """None when a and b agree elementwise to rtol * |b| + atol, else what differs."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return f"{msg}: shapes {a.shape} vs {b.shape}"
    err = np.max(np.abs(a - b) / (np.abs(b) * rtol + atol + 1e-300)) if a.size else 0.0
    if not err <= 1.0:
        return f"{msg}: relative difference too large (max |a-b| = {np.max(np.abs(a - b)):.3e})"
    return None


def assert_close(a, b, rtol, msg, atol=0.0):
    problem = close_error(a, b, rtol, msg, atol)
    assert problem is None, problem


def one_line_problems(rc, err, expect_in, what):
    """A user error: exit 2, exactly one line on stderr, mentioning expect_in. Returns the
    list of what is not so (empty when all holds)."""
    problems = []
    if rc != 2:
        problems.append(f"{what}: exit {rc}, expected 2 (stderr: {err!r})")
    lines = [l for l in err.splitlines() if l.strip()]
    if len(lines) != 1:
        problems.append(f"{what}: expected one line on stderr, got {lines!r}")
    problems += [f"{what}: stderr {err!r} does not mention {s!r}" for s in expect_in if s not in err]
    return problems


def assert_one_line_error(rc, err, expect_in, what):
    problems = one_line_problems(rc, err, expect_in, what)
    assert not problems, "\n".join(problems)


# ---- the FAILURES list of the tests/reliability scripts ------------------------------

FAILURES = []
TMP = None


def init():
    global RECALIGN, TMP
    if len(sys.argv) < 2:
        sys.exit("usage: test.py path/to/recalign")
    RECALIGN = os.path.abspath(sys.argv[1])
    TMP = tempfile.mkdtemp(prefix="recalign-cli-")
    return TMP


def fail(msg):
    FAILURES.append(msg)
    print("FAIL:", msg, file=sys.stderr)


def check(cond, msg):
    if not cond:
        fail(msg)
    return cond


def one_line_error(rc, err, expect_in, what):
    for problem in one_line_problems(rc, err, expect_in, what):
        fail(problem)


def finish(name):
    if FAILURES:
        print(f"{name}: files kept in {TMP}", file=sys.stderr)
        print(f"{name}: {len(FAILURES)} failure(s)", file=sys.stderr)
        sys.exit(1)
    shutil.rmtree(TMP, ignore_errors=True)
    print(f"{name}: all checks passed")
    sys.exit(0)


# ---- writers -----------------------------------------------------------------------

IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}


def write_idx(path, arr, gz=False):
    arr = np.asarray(arr)
    code = IDX_CODES[arr.dtype.type]
    head = struct.pack(">BBBB", 0, 0, code, arr.ndim) + b"".join(struct.pack(">I", d) for d in arr.shape)
    data = head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        with open(path, "wb") as f:
            f.write(data)


def write_npy(path, arr, version=(1, 0), fortran=False):
    """Writes arr as a .npy file; returns the path."""
    arr = np.asfortranarray(arr) if fortran else np.ascontiguousarray(arr)
    with open(path, "wb") as f:
        np.lib.format.write_array(f, arr, version=version, allow_pickle=False)
    return path


def write_data(tmp, x, y, *options):
    """x as tmp/x.npy and y (labels) as tmp/y.npy; the DATA options that read them, then `options`."""
    xp, yp = os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy")
    write_npy(xp, x)
    write_npy(yp, y)
    return ["--images", xp, "--labels", yp] + [str(o) for o in options]


def npy_with_header(path, header, data=b"", version=1):
    """A .npy file with the header text given verbatim (padded as NumPy pads it)."""
    h = header.encode("latin1")
    h = h + b" " * (64 - (10 + len(h) + 1) % 64) + b"\n"
    pre = b"\x93NUMPY" + bytes([version, 0]) + (struct.pack("<H", len(h)) if version == 1 else struct.pack("<I", len(h)))
    with open(path, "wb") as f:
        f.write(pre + h + data)
    return path


# ---- oracle (MATH.md §1-2, computed directly on the data) -------------------------

def spectrum_oracle(x, centered):
    x = np.asarray(x, dtype=np.float64)
    if centered:
        x = x - x.mean(axis=0)
    s = x.T @ x
    w = np.linalg.eigvalsh(s)[::-1]
    return w, np.cumsum(w) / np.trace(s)


def alignment_oracle(x, labels, classes, centered=False, measure="paper", rel_tol=1e-12):
    """The paper's alignment_sweep written through the SVD of X (D x N), MATH.md §2."""
    x = np.asarray(x, dtype=np.float64)
    y = np.eye(classes)[labels].astype(np.float64)  # N x C
    if centered:
        x = x - x.mean(axis=0)
        y = y - y.mean(axis=0)
    u, s, vt = np.linalg.svd(x.T, full_matrices=False)  # X = U S Vᵀ, X is D x N
    lam = s ** 2
    keep = lam > rel_tol * lam[0]
    yv = y.T @ vt.T            # C x r: Y v_i
    if measure == "fit":
        contrib = np.sum(yv ** 2, axis=0)
        norm = np.trace(y.T @ y)
    else:
        syy = y.T @ y
        contrib = np.einsum("ci,cd,di->i", yv, syy, yv)   # ‖Yᵀ Y v_i‖² = (Y v_i)ᵀ Syy (Y v_i)
        norm = np.sum(syy ** 2)
    contrib = np.where(keep, contrib, 0.0)
    if measure == "rank":
        norm = np.sum(contrib)
    return lam, np.cumsum(contrib) / norm
