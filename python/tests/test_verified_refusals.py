"""The verified sketch routes refuse what the CLI refuses, before reading a batch (house rule
"refuse early"): the memory a run will need (the library's estimate, the one the CLI refuses
with: same number of GiB as the CLI's message, against the budget memory= or this machine's
physical memory), and every option the CLI checks before reading. Each refusal is raised with
a batch source that records how far it was read: nothing was. Mixed Monte-Carlo draw counts
(no common factor) run on a sketch route, in Python as in the CLI, to the same document."""
import json
import os
import re
import subprocess

import numpy as np
import pytest

import recalign
from _verified_data import synth_images

CLI = os.environ.get("RECALIGN_CLI")
RNG = np.random.default_rng(5)


class Recorder:
    """A re-iterable batch source (a callable returning a fresh generator) that counts the batches read."""

    def __init__(self, dim=48, classes=4):
        self.batches = [(RNG.normal(size=(20, dim)), RNG.integers(0, classes, 20)) for _ in range(3)]
        self.read = 0

    def __call__(self):
        for b in self.batches:
            self.read += 1
            yield b


def refused(run, match, error=ValueError):
    """run(source) raises `error` whose message matches `match`, and read no batch."""
    source = Recorder()
    with pytest.raises(error, match=match):
        run(source)
    assert source.read == 0


ALIGN = dict(dim=48, rank=5)
MASK = "mask:patch=2x2,ratio=0.5"


@pytest.mark.parametrize("run, match", [
    # rank vs D, passes, tolerance (the CLI's make_config)
    (lambda s: recalign.verified_align(s, 4, dim=48, rank=49), r"rank must lie in \[1, 48\] \(D = 48\), got 49"),
    (lambda s: recalign.verified_align(s, 4, dim=48, rank=0), r"got 0"),
    (lambda s: recalign.verified_align(s, 4, passes=101, **ALIGN), r"passes must lie in \[1, 100\], got 101"),
    (lambda s: recalign.verified_align(s, 4, method="fd", passes=2, **ALIGN), r"passes applies to method='nystrom'"),
    (lambda s: recalign.verified_align(s, 4, method="exact", **ALIGN), r"got 'exact'"),
    (lambda s: recalign.verified_align(s, 4, method="fd", tolerance=0.1, **ALIGN), r"tolerance applies to"),
    (lambda s: recalign.verified_align(s, 4, passes=3, tolerance=1.5, **ALIGN), r"tolerance must lie in \(0, 1\), got 1.5"),
    (lambda s: recalign.verified_align(s, 4, tolerance=0.1, **ALIGN), r"tolerance needs passes >= 2"),
    (lambda s: recalign.verified_align(s, 0, **ALIGN), r"classes must be >= 1.*got 0"),
    (lambda s: recalign.verified_align(s, 4, seed=-1, **ALIGN), r"seed must be >= 0, got -1"),
    (lambda s: recalign.verified_align(s, 4, center="inputs", **ALIGN), r"got 'inputs'"),
    (lambda s: recalign.verified_align(s, 4, measure="published", **ALIGN), r"measure='published'"),
    # denoise: refine, image shape vs D, patch vs image, the noise's own shape, layout, draws, centering
    (lambda s: recalign.verified_denoise(s, [MASK], 4, shape=(4, 4, 3), rank=5, refine=21), r"refine.*got 21"),
    (lambda s: recalign.verified_denoise(s, [MASK], 4, dim=48, shape=(4, 4, 2), rank=5),
     r"shape \(4, 4, 2\) has 32 values but the rows have 48"),
    (lambda s: recalign.verified_denoise(s, [MASK], 4, dim=48, shape=(-4, -4, 3), rank=5), r"shape.*\(-4, -4, 3\)"),
    (lambda s: recalign.verified_denoise(s, [MASK], 4, dim=48, shape=(4, 4, 3, 1), rank=5), r"shape.*\(4, 4, 3, 1\)"),
    (lambda s: recalign.verified_denoise(s, ["mask:patch=5x5,ratio=0.5"], 4, shape=(4, 4, 3), rank=5),
     r"patch.*5.*larger than the image|5x5"),
    (lambda s: recalign.verified_denoise(s, ["mask:patch=5x5,ratio=0.5,draws=2"], 4, shape=(4, 4, 3), rank=5),
     r"patch.*5.*larger than the image|5x5"),
    (lambda s: recalign.verified_denoise(s, ["mask:patch=2x2,ratio=0.5,shape=4x4x2"], 4, dim=48, rank=5),
     r"shape 4x4x2 has 32 values but the rows have 48"),
    (lambda s: recalign.verified_denoise(s, ["dropout:ratio=0.5"], 4, dim=48, layout="whc", rank=5), r"got 'whc'"),
    (lambda s: recalign.verified_denoise(s, ["dropout:ratio=0.5,draws=1"], 4, dim=48, rank=5), r"draws >= 2"),
    (lambda s: recalign.verified_denoise(s, ["dropout:ratio=0.5,draws=2"], 4, dim=48, rank=5, center="centered"),
     r"center='uncentered'"),
    (lambda s: recalign.verified_denoise(s, [], 4, dim=48, rank=5), r"at least one noise"),
    # refine with nothing to refine (the CLI's --refine without a closed-form masking noise), any value
    (lambda s: recalign.verified_denoise(s, ["gaussian:sigma=1"], 4, dim=48, rank=5, refine=2),
     r"refine=2 refines a masking noise's subspace, and no noise is one in closed form"),
    (lambda s: recalign.verified_denoise(s, ["dropout:ratio=0.5,draws=2"], 4, dim=48, rank=5, refine=0),
     r"refine=0 refines a masking noise's subspace"),
    (lambda s: recalign.verified_denoise(s, [MASK], 4, dim=48, rank=5), r"a mask needs the image shape"),
    # tradeoff: lambdas, k
    (lambda s: recalign.verified_tradeoff(s, [], 2, 4, **ALIGN), r"lambdas: empty"),
    (lambda s: recalign.verified_tradeoff(s, [1.0, -1.0], 2, 4, **ALIGN), r"lambdas: -1.0 is not a finite number"),
    (lambda s: recalign.verified_tradeoff(s, [1.0], 49, 4, **ALIGN), r"k must lie in \[1, 48\].*got 49"),
])
def test_options_refused_before_reading(run, match):
    refused(run, match)


def test_wrong_types_refused_before_reading():
    refused(lambda s: recalign.verified_align(s, 4, dim=48, rank=5.5), r"rank must be an integer, got 5.5", TypeError)
    refused(lambda s: recalign.verified_align(s, 4, dim=48, rank=5, memory="4"), r"memory must be .*got '4'")
    refused(lambda s: recalign.verified_align(s, 4, dim=48, rank=5, memory=0), r"memory must be .*got 0")
    # a typo of a keyword is the function's own TypeError, not track()'s (which the rest go to)
    for call, kwargs in ((recalign.verified_align, dict(classes=4)), (recalign.verified_spectrum, {}),
                         (recalign.verified_tradeoff, dict(lambdas=[1.0], k=2, classes=4))):
        refused(lambda s: call(s, dim=48, rank=5, methd="fd", **kwargs),
                rf"^{call.__name__}\(\) got an unexpected keyword argument 'methd'$", TypeError)


def test_dim_read_off_the_first_batch_only():
    """Without dim, D comes from the first batch's shape (as the CLI reads an image folder's first
    image); the refusal still comes before any row is accumulated or another batch read."""
    source = Recorder()
    with pytest.raises(ValueError, match=r"rank must lie in \[1, 48\]"):
        recalign.verified_align(source, 4, rank=49)
    assert source.read == 1


def gib(message):
    return re.search(r"needs about ([0-9.]+ GiB)", message).group(1)


D224 = 224 * 224 * 3


def beside_held(budget):
    """`budget` GiB beside what this process holds already (Python's refusals add its resident set)."""
    return budget + recalign._recalign.resident_memory() / 2**30


@pytest.mark.parametrize("make, what, budget", [
    (lambda m: recalign.VerifiedAlignment(D224, 10, rank=256, memory=m), "the verification pass", 2.0),
    (lambda m: recalign.VerifiedTradeoff(D224, 10, [1.0], 5, rank=256, memory=m), "the verification pass", 2.0),
    (lambda m: recalign.VerifiedDenoising(D224, 10, ["dropout:ratio=0.5,draws=2"], shape=(224, 224, 3), rank=256,
                                          memory=m), "the verification pass", 2.0),
    (lambda m: recalign.VerifiedDenoising(D224, 10, [recalign.Corruption(print, "py", draws=4)], rank=256,
                                          memory=m), "the verification pass", 2.0),
    # FD's ℓ = 3 · 256 rows: 1.85 GB for the sketch's buffer and 0.7 GB for its finish (the Gram
    # matrix of its up to 2ℓ + 1 rows, E = Bᵀ U_r and the Ritz vectors): 2.5 GiB in all, the
    # verification pass 3.3 GiB, so the budget only that pass exceeds is 2.9.
    (lambda m: recalign.VerifiedAlignment(D224, 10, method="fd", rank=256, memory=m), "the verification pass", 2.9),
])
def test_memory_refused_before_allocating(make, what, budget):
    """224x224x3 at rank 256: a budget below the estimate is refused with both numbers; the
    library's estimate is what the binding reports; a larger budget than the estimate is accepted
    (not built here: only the refusal path is exercised, the states would allocate GBs)."""
    with pytest.raises(ValueError, match=r"needs about .* GiB for D = 150528 and C = 10 .*memory=0.5 is 0.50 GiB") as e:
        make(0.5)
    assert "VerifiedAlignment" in str(e.value) or "VerifiedTradeoff" in str(e.value) or "VerifiedDenoising" in str(e.value)
    assert float(gib(str(e.value)).split()[0]) > 0.5
    budget = beside_held(budget)
    with pytest.raises(ValueError, match=what + r": method='(nystrom|fd)' needs about") as e:
        make(budget)
    assert float(gib(str(e.value)).split()[0]) > budget


def test_krylov_memory_refused_early():
    """Block Krylov keeps every pass's block: memory= counts its widest basis (the library's
    run_memory, as the CLI's --memory), so passes=3 is refused where passes=1 fits (beside what
    this process holds already: 15 MB between the two, against a few pages of drift)."""
    d, rank = 150528, 2
    one, three = (recalign._recalign.run_memory("nystrom", d, 4, rank, 0.0, q) for q in (1, 3))
    _, extra = recalign._recalign.verification_memory("alignment", d, 4, rank)
    one = max(one, recalign._recalign.run_memory("nystrom", d, 4, rank, extra))
    assert three - one > 2**23
    budget = beside_held((one + three) / 2 / 2**30)
    recalign.VerifiedAlignment(d, 4, rank=rank, passes=1, memory=budget)
    with pytest.raises(ValueError, match=r"VerifiedAlignment: method='nystrom' needs about .* fewer passes"):
        recalign.VerifiedAlignment(d, 4, rank=rank, passes=3, memory=budget)


def test_refine_zero_is_not_charged_the_refinement():
    """refine=0 runs no refinement step: its estimate is the one pass on U and the sketched
    subspace (2 D doubles per direction, 2 x 256 directions); refine=8 counts the step instead:
    the basis of 256 + 256 + 2 x 64 directions and the clean top's 3 x 64 (its Sxx V on disk), the
    pass's Sxx T (2 x 64: the mask's and the clean top's) and one correction's 4 x 64 + rank
    temporaries (the CLI's --refine 0 likewise)."""
    need = []
    for refine in (0, 8):
        with pytest.raises(ValueError, match="the verification pass") as e:
            recalign.VerifiedDenoising(D224, 10, ["mask:patch=16x16,ratio=0.75"], shape=(224, 224, 3), rank=256,
                                       refine=refine, memory=beside_held(2.0))
        need.append(float(gib(str(e.value)).split()[0]))
    assert need[1] - need[0] == pytest.approx(8 * D224 * ((640 + 3 * 64 + 2 * 64 + 4 * 64 + 256) - 2 * 512) / 2**30, abs=0.011)


def test_memory_default_is_physical_memory():
    """memory=None: this machine's physical memory, as the CLI without --memory."""
    phys = recalign._recalign.physical_memory()
    assert phys > 2**28
    dim = 2**24  # 6 rank D doubles of the sketch alone exceed any machine's memory at rank D
    with pytest.raises(ValueError, match=r"VerifiedAlignment: .*this machine has " +
                       re.escape(f"{phys / 2**30:.{2 if phys < 10 * 2**30 else 0}f} GiB")):
        recalign.VerifiedAlignment(dim, 10, rank=dim)


def test_memory_counts_what_the_process_holds_already():
    """The estimate models a recalign process; this one holds the interpreter, NumPy and the
    caller's data too (at 224x224x3 that made the README's verified_denoise peak 1 % above the
    estimate alone): a budget the run alone would fit in, but not beside this process's resident
    set, is refused, and one with room for both is not."""
    d, rank = 150528, 4
    _, extra = recalign._recalign.verification_memory("alignment", d, 4, rank)
    need = max(recalign._recalign.run_memory("nystrom", d, 4, rank, q) for q in (0.0, extra))
    held = recalign._recalign.resident_memory()
    assert held > 2**24  # an interpreter with NumPy and this module: tens of MB
    with pytest.raises(ValueError, match=r"needs about .* GiB .* GiB of it held by this process already; memory="):
        recalign.VerifiedAlignment(d, 4, rank=rank, memory=(need + held / 2) / 2**30)
    recalign.VerifiedAlignment(d, 4, rank=rank, memory=(need + held + 2**24) / 2**30)
    ballast = np.ones(2**26 // 8)  # 64 MiB more held (mapped afresh: above malloc's largest mmap threshold)
    with pytest.raises(ValueError, match="held by this process already"):
        recalign.VerifiedAlignment(d, 4, rank=rank, memory=(need + held + 2**24) / 2**30)
    del ballast


def test_verification_memory_against_the_help_text():
    """The estimate as the CLI's --verify help states it, from its parts: 3 D doubles per verified
    direction for alignment and tradeoff; denoise, the run's largest phase (docs/benchmarks-log.md, "The
    first basis construction in place"): the sketch's state and statistics (D (2 rank + 20)
    doubles, and 64 MiB + 225 D doubles measured for the process, at most 384 x 8,192: OpenBLAS's
    buffers), the blocks (D (s + 1) / 2 doubles per geometry), a Monte-Carlo noise's 3 (rank + 10)
    directions, 6 D (rank + 10) doubles of sketch and 2 (D + columns) columns doubles of products,
    then a pass (2 D doubles per direction) and a refinement step (each mask's 64 corrections and
    64 previous tops, one correction's 7 x 64 + rank temporaries); never below run_memory."""
    d, k, c = 768, 24, 10
    columns, extra = recalign._recalign.verification_memory("alignment", d, c, k)
    assert (columns, extra) == (k, 24 * d * k)
    columns, extra = recalign._recalign.verification_memory("tradeoff", d, c, k)
    # tradeoff_verification's defaults (one refinement pass, the diagonal): 2 C directions a pass,
    # the diagonal, the preconditioner's 2 D (rank + C) temporaries and the new basis beside the last.
    assert (columns, extra) == (k + 4 * c, 24 * d * (k + 4 * c) + 8 * d + 16 * d * (k + c) + 8 * d * (k + 4 * c))
    specs = [recalign.NoiseSpec("mask:patch=4x4,ratio=0.5"), recalign.NoiseSpec("mask:patch=4x4,ratio=0.2"),
             recalign.NoiseSpec("dropout:ratio=0.5,draws=2"), recalign.NoiseSpec("gaussian:sigma=1")]
    columns, extra = recalign._recalign.verification_memory("denoising", d, c, k, specs, (16, 16, 3))
    cols = min(k + 2 * (k + 2 * min(64, k)) + 3 * (k + 10), d)
    blocks = 4 * d * (4 * 4 * 3 + 1)  # one geometry for both masks
    mc = 48 * d * (k + 10) + 16 * (d + cols) * cols
    step = 16 * d * cols + 8 * d * (2 * 2 * min(64, k) + 7 * min(64, k) + k)
    peak = 8 * d * (2 * k + 20 + 225) + 2**26 + blocks + mc + step  # + the process, measured
    assert (columns, extra) == (cols, max(peak - 48 * k * d, 0))
    # refine=0 (refines=False): no refinement step, the larger of a pass and the first basis.
    _, without = recalign._recalign.verification_memory("denoising", d, c, k, specs, (16, 16, 3), refines=False)
    first = max(16 * d * min(k + 2 * k + 3 * (k + 10), d), 8 * d * (k + 2 * k + k))  # no corrections, no tops
    assert without == max(peak - step + first - 48 * k * d, 0) and without < extra
    assert recalign._recalign.run_memory("nystrom", d, c, k) == 8 * (6 * k * d + 2 * (d + 1) * c + c * c)
    assert recalign._recalign.run_memory("exact", d, 0) == 8 * 3 * d * d


def cli_or_skip():
    if not CLI or not os.path.exists(CLI):
        pytest.skip("RECALIGN_CLI is not set (the python suite sets it when tools are built)")


@pytest.mark.parametrize("args, make", [
    (["align"], lambda m: recalign.VerifiedAlignment(D224, 10, rank=256, memory=m)),
    (["tradeoff", "--lambda", "1", "--k", "5"], lambda m: recalign.VerifiedTradeoff(D224, 10, [1.0], 5, rank=256, memory=m)),
    (["denoise", "--image-shape", "224,224,3", "--no-center", "--noise", "mask:patch=4x4,ratio=0.5",
      "--noise", "dropout:ratio=0.5,draws=2"],
     lambda m: recalign.VerifiedDenoising(D224, 10, ["mask:patch=4x4,ratio=0.5", "dropout:ratio=0.5,draws=2"],
                                          shape=(224, 224, 3), rank=256, memory=m)),
])
@pytest.mark.parametrize("memory", [1.0, 2.0])
def test_memory_same_number_as_the_cli(tmp_path, args, make, memory):
    """The CLI's refusal (--memory, before reading: headers only) and Python's name the same GiB,
    Python's with what its process holds already added.
    Python's estimate counts the finished sketch held in memory through the verification pass
    (Python parks it when $TMPDIR has room, but does not count on that); the CLI's align and
    tradeoff count it parked when $TMPDIR has room (check_verification), and held when it has
    none: that is the CLI run compared here."""
    cli_or_skip()
    images, labels = tmp_path / "x.u8", tmp_path / "y.npy"
    np.zeros((10, D224), np.uint8).tofile(images)
    np.save(labels, np.arange(10))
    env = dict(os.environ)
    if args[0] != "denoise":  # denoise parks by its own model, which Python's shares
        env["TMPDIR"] = str(tmp_path / "no such directory")
    out = subprocess.run([CLI] + args[:1] + ["--images", str(images), "--raw-shape", f"10,{D224}", "--labels",
                                             str(labels), "--classes", "10", "--method", "nystrom", "--rank", "256",
                                             "--memory", str(memory), "--quiet"] + args[1:],
                         capture_output=True, text=True, timeout=60, env=env)  # refused: it reads no row
    assert out.returncode == 2 and "--memory is" in out.stderr, out.stderr
    with pytest.raises(ValueError) as e:  # the same budget beside what this process holds already
        make(beside_held(memory))
    # Python's estimate is the CLI's plus what this process holds already (the CLI's models a
    # recalign process): all three rounded to 0.01 GiB.
    held = float(re.search(r"([0-9.]+) GiB of it held by this process already", str(e.value)).group(1))
    assert held >= 0.02
    python = float(gib(str(e.value)).split()[0])  # 10 GiB and more: no decimals (the CLI's format)
    assert python == pytest.approx(float(gib(out.stderr).split()[0]) + held, abs=0.016 if python < 10 else 0.51)
    assert ("the verification pass" in out.stderr) == ("the verification pass" in str(e.value))


def test_mixed_draws_run_on_a_sketch_route_as_in_the_cli(tmp_path):
    """draws=2 beside draws=3 (no common factor: the exact route's standard-error groups refuse it,
    a sketch route estimates no standard error): Python and the CLI both run it, to the same
    document bit for bit; the CLI's exact route still refuses it."""
    cli_or_skip()
    images, labels, _, _, data = synth_images(tmp_path, 200, 8)
    noises = ["dropout:ratio=0.5,draws=2,seed=1", "mask:patch=2x2,ratio=0.5,draws=3,seed=2"]
    common = [CLI, "denoise", "--images", images, "--raw-shape", "200,192", "--labels", labels, "--classes", "10",
              "--batch", "100", "--image-shape", "8,8,3", "--no-center", "--json", "--quiet"] + \
        [a for n in noises for a in ("--noise", n)]
    out = subprocess.run(common + ["--method", "nystrom", "--rank", "10", "--seed", "3"], check=True,
                         capture_output=True, text=True)
    cli = {k: v for k, v in json.loads(out.stdout).items() if k != "input"}
    result = recalign.verified_denoise(data, noises, 10, shape=(8, 8, 3), rank=10, seed=3)
    assert result.to_dict() == cli
    exact = subprocess.run(common + ["--method", "exact"], capture_output=True, text=True)
    assert exact.returncode == 2 and "in groups of one size" in exact.stderr


def test_spill_directory_refused_before_reading(tmp_path, monkeypatch):
    """The refinement passes keep their carried directions in unlinked files in $TMPDIR: one no
    file can be made in (here a regular file, for which statvfs answers) is refused before a batch
    is read, as the CLI's denoise --refine (the library's io::spill_shortfall), and so is a loaded
    state that has passes left; refine=0 and Gaussian noise need no disk."""
    not_a_directory = tmp_path / "tmpdir-is-a-file"
    not_a_directory.write_text("x")
    monkeypatch.setenv("TMPDIR", str(not_a_directory))
    refused(lambda s: recalign.verified_denoise(s, [MASK], 4, dim=48, shape=(4, 4, 3), rank=5, refine=1),
            r"refine=1: .* unlinked files in " + re.escape(str(not_a_directory)) + r" \(\$TMPDIR\): .*Not a directory.*"
            r"refine=0")
    assert recalign._recalign.denoising_spill(48, 5, [recalign.NoiseSpec(MASK)], (4, 4, 3)) > 0
    recalign.VerifiedDenoising(48, 4, [MASK], shape=(4, 4, 3), rank=5, refine=0)
    recalign.VerifiedDenoising(48, 4, ["gaussian:sigma=1"], rank=5)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    saved = recalign.VerifiedDenoising(48, 4, [MASK], shape=(4, 4, 3), rank=5, refine=1).to_bytes()
    monkeypatch.setenv("TMPDIR", str(not_a_directory))
    with pytest.raises(ValueError, match=re.escape(str(not_a_directory)) + r".*Not a directory"):
        recalign.VerifiedDenoising.from_bytes(saved)


def test_refine_without_a_masking_noise_saved_by_older_builds_loads():
    """States saved before refine was refused without a closed-form masking noise hold refine=8 (the
    default) in their header's args: they load, as saved; new ones save none there."""
    import json
    import struct
    data = recalign.VerifiedDenoising(48, 4, ["gaussian:sigma=1"], rank=5).to_bytes()
    version, size = struct.unpack_from("<II", data, 8)
    head = json.loads(data[16:16 + size])
    assert head["args"]["refine"] is None
    head["args"]["refine"] = 8
    text = json.dumps(head).encode()
    older = data[:8] + struct.pack("<II", version, len(text)) + text + data[16 + size:]
    assert recalign.VerifiedDenoising.from_bytes(older).verification_passes == 1
