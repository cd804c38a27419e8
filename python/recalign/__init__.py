"""recalign: how the reconstruction (top principal) subspace aligns with a supervised task,
measured on data larger than memory, one minibatch at a time.

The accumulators (MomentAccumulator, ClassMoments, FrequentDirections, NystromSketch,
MonteCarloNoise, AlignmentTracker) share one verb set: ``update(batch, ...)`` (the GIL is
released), ``merge(other)``, ``to_bytes()``/``from_bytes()``, ``save(path)``/``load(path)``
(atomic checkpoint files) and pickling through the same checkpoint bytes, so states travel
through multiprocessing, Dask or Ray and merge on the other side.

Batches are rows = samples. NumPy float32/float64/uint8 C-contiguous arrays and CPU torch
tensors are read in place; anything else is converted once (float16 and bfloat16 to float32,
which holds their values exactly). Image batches (N, H, W) or
(N, C, H, W) are flattened to (N, H*W*C) without a copy.

Errors:
  * TypeError -- something that is not an array at all given as a batch or labels (None, a
    str or bytes, a dict, a scipy.sparse matrix); the message names its type.
  * ValueError -- a bad argument or a bad batch (wrong width, NaN/Inf, a label out of range,
    values that cannot convert); the message names the row, and the object is unchanged.
  * recalign.FileError (a subclass of OSError) -- a truncated, corrupt or foreign
    checkpoint file or byte string; the message names the file (``<bytes>`` or ``<pickle>``
    for in-memory states) and the byte offset, also in ``.file`` and ``.offset`` (None for
    an error of the whole file, e.g. one that cannot be opened).
  * OSError -- a checkpoint could not be written (the previous file is intact).
  * recalign.LockError (a BlockingIOError) -- another run holds the checkpoint's lock
    (CheckpointLock, taken by ``track(..., checkpoint=...)``); the message names its pid,
    also in ``.pid``.
  * RuntimeError -- a call the object's configuration does not allow (sxy() without
    targets, update() on a MonteCarloNoise loaded without its corruption) or a LAPACK
    routine rejecting its arguments (a bug). Numerical outcomes (non-convergence, skipped
    directions) are not errors: they are reported in the results (info, skipped, dropped).

Data-loader hooks (pure Python, see recalign.hooks): ``track`` drives a tracker over any
iterable of (images, labels) with periodic atomic checkpoints; ``ProjectionTransform`` is a
picklable top/bottom-subspace projection for torch DataLoader transforms.

High D (MATH.md §7): PatchBlocks and RestrictedMoments (the verification pass's exact
statistics of a basis), the Ritz analyses that read them, and VerifiedAlignment /
VerifiedDenoising / VerifiedTradeoff (recalign.verified): the CLI's sketch routes with their
verification pass, read by ``track`` as many times as they need (verified_align,
verified_denoise, verified_tradeoff in one call); their results say what is exact
(exact_for) and the sketch's error (sketch_error). Monte-Carlo noises (specs with draws=S,
or recalign.Corruption written in Python) run there too, through MonteCarloSketch.

scikit-learn estimators (recalign.sklearn, imported on demand): StreamingPCA (IncrementalPCA's
interface and attributes on the exact or sketched streaming second moment) and
AlignmentCurve (fit(X, y) -> curve_).
"""
from . import _recalign, _signatures

_signatures.install(vars(_recalign))  # inspect.signature works on every function and method
from ._recalign import (  # noqa: F401,E402
    __version__,
    AlignmentResult,
    AlignmentTracker,
    CheckpointLock,
    ClassMoments,
    CrossMoments,
    DenoisingResult,
    DenoisingSubspace,
    FileError,
    FrequentDirections,
    LockError,
    MomentAccumulator,
    MonteCarloNoise,
    NoiseImpact,
    NoiseMoments,
    NoiseSpec,
    NystromSketch,
    Spectrum,
    Statistics,
    SubspaceProjector,
    TrackerNoiseReport,
    TrackerReport,
    TradeoffPoint,
    TradeoffResult,
    alignment_curve,
    closed_form_noise,
    decode_image,
    denoising_alignment,
    denoising_subspace,
    exact_spectrum,
    make_statistics,
    noise_impact,
    sym_eigen,
    tradeoff,
)
from ._recalign import (  # noqa: F401,E402
    MonteCarloBatch,
    MonteCarloProducts,
    MonteCarloSketch,
    PatchBlocks,
    RestrictedMoments,
    RestrictedStatistics,
    RitzAlignment,
    RitzDenoising,
    RitzSpectrum,
    RitzVerifiedDenoising,
    basis_alignment,
    basis_impact,
    denoising_refinement,
    gaussian_test_matrix,
    monte_carlo_ritz_basis,
    orthonormal_extension,
    ritz_alignment,
    ritz_denoising,
    ritz_monte_carlo_denoising,
    ritz_spectrum,
    ritz_tradeoff,
    sketched_denoising_subspace,
    tradeoff_ritz_basis,
    verified_denoising,
    verified_ritz_denoising,
)
from .hooks import ProjectionTransform, merge_all, track  # noqa: F401
from .verified import (  # noqa: F401
    Corruption,
    SketchError,
    VerifiedAlignment,
    VerifiedAlignmentResult,
    VerifiedDenoising,
    VerifiedDenoisingResult,
    VerifiedNoise,
    VerifiedSpectrum,
    VerifiedSpectrumResult,
    VerifiedTradeoff,
    VerifiedTradeoffResult,
    verified_align,
    verified_denoise,
    verified_spectrum,
    verified_tradeoff,
)
from .readers import Cifar, DataSource, ImageFolder, ImageList  # noqa: F401

__all__ = [
    "AlignmentResult", "AlignmentTracker", "CheckpointLock", "Cifar", "ClassMoments", "CrossMoments", "DenoisingResult",
    "DataSource", "DenoisingSubspace", "FileError", "FrequentDirections", "ImageFolder", "ImageList", "LockError", "MomentAccumulator", "MonteCarloNoise",
    "NoiseImpact", "NoiseMoments", "NoiseSpec", "NystromSketch", "ProjectionTransform", "Spectrum", "Statistics",
    "SubspaceProjector", "TrackerNoiseReport", "TrackerReport", "TradeoffPoint", "TradeoffResult",
    "alignment_curve", "closed_form_noise", "decode_image", "denoising_alignment", "denoising_subspace",
    "exact_spectrum", "make_statistics", "merge_all", "noise_impact", "sym_eigen", "track", "tradeoff",
    # high D (MATH.md §7): exact patch blocks, the verification pass, verified sketch analyses
    "PatchBlocks", "RestrictedMoments", "RestrictedStatistics", "RitzAlignment", "RitzDenoising", "RitzSpectrum",
    "RitzVerifiedDenoising", "SketchError", "VerifiedAlignment", "VerifiedAlignmentResult", "VerifiedDenoising",
    "VerifiedDenoisingResult", "VerifiedNoise", "VerifiedSpectrum", "VerifiedSpectrumResult", "VerifiedTradeoff",
    "VerifiedTradeoffResult", "basis_alignment", "basis_impact", "denoising_refinement", "orthonormal_extension",
    "ritz_alignment", "ritz_denoising", "ritz_spectrum", "ritz_tradeoff", "sketched_denoising_subspace",
    "tradeoff_ritz_basis", "verified_align", "verified_denoise", "verified_denoising", "verified_spectrum",
    "verified_tradeoff",
    # Monte-Carlo noises on the sketch routes
    "Corruption", "MonteCarloBatch", "MonteCarloProducts", "MonteCarloSketch", "gaussian_test_matrix", "monte_carlo_ritz_basis",
    "ritz_monte_carlo_denoising", "verified_ritz_denoising",
]
