# Type stubs of the extension module recalign._recalign (editor completion, type checkers).
import os
from typing import Any, Callable, Dict, Iterable, List, Literal, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

ArrayLike = Any  # NumPy array (float32/float64/uint8 read in place), CPU torch tensor, nested lists
Shape = Union[Tuple[int, int], Tuple[int, int, int], None]
Center = Literal["centered", "uncentered"]
Measure = Literal["paper", "rank", "fit"]
Method = Literal["exact", "fd", "nystrom"]
Status = Literal["converged", "not_converged", "breakdown"]
Part = Literal["top", "bottom"]
Layout = Literal["hwc", "chw"]
Targets = Literal["none", "class_ids", "labels", "dense"]

class FileError(OSError):
    file: str
    offset: int

class LockError(BlockingIOError):
    file: str
    pid: int

class CheckpointLock:
    def __init__(self, path: Union[str, "os.PathLike[str]"]) -> None: ...
    def release(self) -> None: ...
    @property
    def held(self) -> bool: ...
    @property
    def path(self) -> str: ...
    @property
    def lock_path(self) -> str: ...
    def __enter__(self) -> "CheckpointLock": ...
    def __exit__(self, *args: Any) -> None: ...

class DataSource:
    """Batches (images (n, D) in the stored type, labels int64 (n,) or None) read from files:
    image folders, list files, CIFAR batches, IDX/.npy/raw (recalign.ImageFolder, ImageList, Cifar)."""
    def __init__(self, images: Sequence[str], format: str = "auto", root: str = "", channels: int = 3,
                 resize: int = 0, crop: Tuple[int, int] = (0, 0), layout: Literal["hwc", "chw"] = "hwc",
                 label_kind: Literal["fine", "coarse"] = "fine", batch: int = 256, threads: int = 0,
                 skip_unreadable: bool = False, labels: Sequence[str] = ...) -> None: ...
    def __iter__(self) -> "DataSource": ...
    def __next__(self) -> Tuple[npt.NDArray[Any], Optional[npt.NDArray[np.int64]]]: ...
    def __len__(self) -> int: ...
    @property
    def dim(self) -> int: ...
    @property
    def format(self) -> str: ...
    @property
    def classes(self) -> List[str]: ...
    @property
    def num_classes(self) -> int: ...
    @property
    def samples(self) -> List[Tuple[str, int]]: ...
    @property
    def skipped_files(self) -> List[Tuple[int, str, str]]: ...

class _State:
    @property
    def n(self) -> int: ...
    @property
    def dim(self) -> int: ...
    @property
    def empty(self) -> bool: ...
    def __len__(self) -> int: ...
    def to_bytes(self) -> bytes: ...
    def save(self, path: str) -> None: ...
    def copy(self) -> Any: ...

class CrossMoments:
    center: Center
    n: int
    sxy: npt.NDArray[np.float64]
    syy: npt.NDArray[np.float64]

class MomentAccumulator(_State):
    def __init__(self, dim: int, classes: int = 0, targets: Optional[Targets] = None, float32_kernels: bool = False) -> None: ...
    def update(self, x: ArrayLike, y: Optional[ArrayLike] = None, first_row: int = 0) -> None: ...
    def merge(self, other: "MomentAccumulator") -> None: ...
    @property
    def classes(self) -> int: ...
    @property
    def targets(self) -> Targets: ...
    @property
    def has_targets(self) -> bool: ...
    def mean_x(self) -> npt.NDArray[np.float64]: ...
    def mean_y(self) -> npt.NDArray[np.float64]: ...
    def sxx(self, center: Center = "centered") -> npt.NDArray[np.float64]: ...
    def sxy(self, center: Center = "centered") -> npt.NDArray[np.float64]: ...
    def syy(self, center: Center = "centered") -> npt.NDArray[np.float64]: ...
    def cross(self, center: Center = "uncentered") -> CrossMoments: ...
    def trace_xx(self, center: Center = "centered") -> float: ...
    def diag_xx(self, center: Center = "centered") -> npt.NDArray[np.float64]: ...
    def finish(self, center: Literal["uncentered", "centered", "inputs"] = "uncentered", top: int = 0) -> "Statistics": ...
    @staticmethod
    def from_bytes(data: bytes) -> "MomentAccumulator": ...
    @staticmethod
    def load(path: str) -> "MomentAccumulator": ...
    def copy(self) -> "MomentAccumulator": ...

class ClassMoments(_State):
    def __init__(self, dim: int, classes: int) -> None: ...
    def update(self, x: ArrayLike, labels: ArrayLike, first_row: int = 0) -> None: ...
    def merge(self, other: "ClassMoments") -> None: ...
    @property
    def classes(self) -> int: ...
    @property
    def counts(self) -> npt.NDArray[np.uint64]: ...
    @property
    def means(self) -> npt.NDArray[np.float64]: ...
    @property
    def mean(self) -> npt.NDArray[np.float64]: ...
    def cross(self, center: Center = "uncentered") -> CrossMoments: ...
    @staticmethod
    def from_bytes(data: bytes) -> "ClassMoments": ...
    @staticmethod
    def load(path: str) -> "ClassMoments": ...
    def copy(self) -> "ClassMoments": ...

class Spectrum:
    method: Literal["exact", "fd", "nystrom"]
    center: Center
    n: int
    dim: int
    eigenvalues: npt.NDArray[np.float64]
    basis: npt.NDArray[np.float64]
    total: float
    explained: npt.NDArray[np.float64]
    error_bound: float
    error_estimate: float
    status: Literal["converged", "not_converged", "breakdown"]
    rank: int
    complete: bool
    def k_for_fraction(self, fraction: float) -> int: ...
    def variances(self, ddof: Literal[0, 1] = 1) -> npt.NDArray[np.float64]: ...

class Statistics:
    method: Literal["exact", "fd", "nystrom"]
    center: Literal["uncentered", "centered"]
    n: int
    dim: int
    classes: int
    spectrum: Spectrum
    mean: npt.NDArray[np.float64]
    second_moment: Optional[npt.NDArray[np.float64]]
    cross: Optional[CrossMoments]
    def provides(self, what: Literal["full_spectrum", "second_moment", "targets"]) -> bool: ...

def make_statistics(spectrum: Spectrum, mean: ArrayLike, cross: Optional[CrossMoments] = None,
                    second_moment: Optional[ArrayLike] = None) -> Statistics: ...

def exact_spectrum(moments: MomentAccumulator, center: Center = "centered") -> Spectrum: ...
def sym_eigen(a: ArrayLike) -> Tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], int]: ...

class SubspaceProjector:
    part: Part
    fraction: float
    explained: float
    k: int
    dim: int
    basis: npt.NDArray[np.float64]
    mean: npt.NDArray[np.float64]
    def __init__(self, spectrum: Spectrum, mean: Optional[ArrayLike] = None, fraction: float = 0.75, part: Part = "top") -> None: ...
    @staticmethod
    def from_statistics(statistics: Statistics, fraction: float = 0.75, part: Part = "top") -> "SubspaceProjector": ...
    def project(self, x: ArrayLike) -> npt.NDArray[np.float64]: ...

class FrequentDirections(_State):
    def __init__(self, dim: int, ell: int, center: Center = "centered", float32_kernels: bool = False) -> None: ...
    def update(self, x: ArrayLike, first_row: int = 0) -> None: ...
    def merge(self, other: "FrequentDirections") -> None: ...
    ell: int
    shrinkage: float
    shrinks: int
    rows: int
    def mean(self) -> npt.NDArray[np.float64]: ...
    def trace(self) -> float: ...
    def sketch(self) -> npt.NDArray[np.float64]: ...
    def spectrum(self, rank: int = 0, rel_tol: float = 1e-12) -> Spectrum: ...
    def finish(self, labels: Optional["ClassMoments"] = None, rank: int = 0) -> Statistics: ...
    @staticmethod
    def from_bytes(data: bytes) -> "FrequentDirections": ...
    @staticmethod
    def load(path: str) -> "FrequentDirections": ...
    def copy(self) -> "FrequentDirections": ...

class NystromSketch(_State):
    def __init__(self, dim: int, rank: int, oversampling: int = 10, probes: int = 10, seed: int = 0, center: Center = "centered",
                 float32_kernels: bool = False, test: Literal["auto", "signs", "gaussian"] = "auto") -> None: ...
    def update(self, x: ArrayLike, first_row: int = 0) -> None: ...
    def merge(self, other: "NystromSketch") -> None: ...
    def next_pass(self) -> None: ...
    pass_index: int
    def relative_error(self, rank: int = 0) -> float: ...
    rank: int
    width: int
    def mean(self) -> npt.NDArray[np.float64]: ...
    def trace(self) -> float: ...
    def range(self) -> npt.NDArray[np.float64]: ...
    def spectrum(self, rank: int = 0) -> Spectrum: ...
    def finish(self, labels: Optional["ClassMoments"] = None, rank: int = 0) -> Statistics: ...
    @staticmethod
    def from_bytes(data: bytes) -> "NystromSketch": ...
    @staticmethod
    def load(path: str) -> "NystromSketch": ...
    def copy(self) -> "NystromSketch": ...

class AlignmentResult:
    measure: Measure
    center: Center
    method: Literal["exact", "fd", "nystrom"]
    n: int
    dim: int
    classes: int
    eigenvalues: npt.NDArray[np.float64]
    contributions: npt.NDArray[np.float64]
    curve: npt.NDArray[np.float64]
    normaliser: float
    skipped: int
    max_k: int
    complete: bool

def alignment_curve(statistics: Statistics, measure: Literal["paper", "rank", "fit", "published"] = "paper",
                    rel_tol: float = 1e-12) -> AlignmentResult: ...

class TradeoffPoint:
    lambda_: float
    v: npt.NDArray[np.float64]
    w: npt.NDArray[np.float64]
    z: npt.NDArray[np.float64]
    eigenvalues: npt.NDArray[np.float64]
    supervised_loss: float
    reconstruction_loss: float
    loss: float
    status: Status

class TradeoffResult:
    center: Center
    n: int
    dim: int
    classes: int
    k: int
    rank_xx: int
    dropped: int
    status: Status
    points: List[TradeoffPoint]

def tradeoff(statistics: Statistics, lambdas: Sequence[float], k: int, rel_tol: float = 1e-12) -> TradeoffResult: ...

class NoiseSpec:
    def __init__(self, text: str) -> None: ...
    @staticmethod
    def parse(text: str) -> "NoiseSpec": ...
    family: str
    sigma: float
    ratio: float
    patch: Tuple[int, int]
    scheme: str
    shape: Shape
    layout: Layout
    draws: int
    seed: int

class NoiseMoments:
    def __init__(self, n: int, bs: ArrayLike, g: ArrayLike) -> None: ...
    n: int
    bs: npt.NDArray[np.float64]
    g: npt.NDArray[np.float64]

def closed_form_noise(spec: Union[str, NoiseSpec], moments: MomentAccumulator, center: Center = "uncentered",
                      shape: Shape = None, layout: Layout = "hwc") -> NoiseMoments: ...

class MonteCarloNoise:
    def __init__(self, dim: int, spec: Union[str, NoiseSpec, None] = None, *,
                 corrupt: Optional[Callable[[npt.NDArray[np.float64], Dict[str, int]], ArrayLike]] = None,
                 draws: int = 16, seed: int = 0, name: str = "", shape: Shape = None, layout: Layout = "hwc",
                 replicates: int = 2) -> None: ...
    def update(self, x: ArrayLike, first_row: Optional[int] = None) -> None: ...
    def merge(self, other: "MonteCarloNoise") -> None: ...
    def estimate(self) -> Dict[str, Any]: ...
    spec: Optional[NoiseSpec]
    name: str
    n: int
    dim: int
    empty: bool
    batches: int
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes, spec: Union[str, NoiseSpec, None] = None, *, corrupt: Optional[Callable[..., Any]] = None,
                   shape: Shape = None, layout: Layout = "hwc") -> "MonteCarloNoise": ...
    def copy(self) -> "MonteCarloNoise": ...

class DenoisingSubspace:
    eigenvalues: npt.NDArray[np.float64]
    basis: npt.NDArray[np.float64]
    rank_g: int
    dropped: int
    informative: int
    status: Status

def denoising_subspace(noisy: NoiseMoments, rel_tol: float = 1e-12) -> DenoisingSubspace: ...

class DenoisingResult:
    measure: Measure
    center: Center
    n: int
    dim: int
    classes: int
    subspace: DenoisingSubspace
    curve: npt.NDArray[np.float64]
    clean_curve: npt.NDArray[np.float64]
    relative_difference: npt.NDArray[np.float64]
    normaliser: float
    skipped: int
    max_k: int
    stop_reason: str

def denoising_alignment(clean: Statistics, noisy: NoiseMoments, measure: Literal["paper", "rank", "fit", "published"] = "paper",
                        rel_tol: float = 1e-12) -> DenoisingResult: ...

class NoiseImpact:
    distance: npt.NDArray[np.float64]
    normalised: npt.NDArray[np.float64]
    max_k: int
    status: Status

def noise_impact(clean: Statistics, noisy: NoiseMoments, rel_tol: float = 1e-12) -> NoiseImpact: ...

class TrackerNoiseReport:
    spec: str
    monte_carlo: bool
    denoising: DenoisingResult
    impact: NoiseImpact
    bs_stderr_fro: float
    g_stderr_fro: float
    change: float

class TrackerReport:
    n: int
    reports: int
    clean: AlignmentResult
    clean_change: float
    noises: List[TrackerNoiseReport]

class AlignmentTracker(_State):
    def __init__(self, dim: int, classes: int, shape: Shape = None, layout: Layout = "hwc",
                 noises: Iterable[Union[str, NoiseSpec]] = ..., measure: Measure = "paper", center: Center = "uncentered",
                 replicates: int = 2, rel_tol: float = 1e-12) -> None: ...
    def update(self, images: ArrayLike, labels: ArrayLike, first_row: Optional[int] = None) -> None: ...
    def merge(self, other: "AlignmentTracker") -> None: ...
    def report(self) -> TrackerReport: ...
    def noise_expectations(self, i: int) -> NoiseMoments: ...
    @property
    def moments(self) -> MomentAccumulator: ...
    classes: int
    noises: List[str]
    @staticmethod
    def from_bytes(data: bytes) -> "AlignmentTracker": ...
    @staticmethod
    def load(path: str) -> "AlignmentTracker": ...
    def copy(self) -> "AlignmentTracker": ...

def decode_image(
    data: bytes,
    channels: Literal[1, 3] = 3,
    resize: int = 0,
    crop: Tuple[int, int] = (0, 0),
    layout: Literal["hwc", "chw"] = "hwc",
    name: str = "<bytes>",
) -> npt.NDArray[np.uint8]: ...
