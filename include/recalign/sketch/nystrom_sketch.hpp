// Nyström / range sketch of the second-moment matrix (MATH.md §6; Halko, Martinsson, Tropp
// 2011; Tropp, Yurtsever, Udell, Cevher 2017), single- or multi-pass.
//
// Pass 0 accumulates Y = M Ω for a random test matrix Ω (D x s, s = k + p) drawn from the
// counter-based generator keyed by (seed, row): random signs ±1 (the default; one Philox
// block gives 64 entries), sparse signs (opt-in, nystrom_test below) or, for states saved
// before signs existed, standard normals. Ω is
// never stored: each update regenerates it one block of rows at a time (test_block()),
// alongside the batch converted one block of columns at a time (never widened as a whole). Per batch Y += X_bᵀ (X_b Ω) on the batch-centered rows, plus Chan's term
// (n_a n_b / n) δ (δᵀ Ω) (MATH.md §1), so Y is exactly linear in the data and merge = sum.
// The uncentered route adds n μ (μᵀ Ω) when a result is formed.
//
// Multi-pass: after a full read of the data, next_pass() replaces Ω by Q, the orthonormal
// basis of the stable Nyström reconstruction of this pass (span of C Ω), and starts a new
// accumulation Y = C Q: one power (subspace) iteration per extra read of the data source.
// Q is stored in checkpoints (it depends on the data); Ω and the probes never are.
//
// Block Krylov (options.blocks > 1; Musco & Musco 2015, Tropp & Webber 2023 §11): next_pass()
// keeps this pass's test block and its product instead of dropping them. The state then holds
// K = [Q_0, ..., Q_{m-1}] (D x m s, orthonormal: Q_0 = Ω R⁻¹ from Cholesky QR, each later block
// orthonormal and orthogonal to the earlier ones) and C K, and the next pass's test block is
// C Q_{m-1} with span(K) projected out, so span([K, Q_m]) = span(Ω, C Ω, ..., C^m Ω). The
// result is the stable Nyström reconstruction on the whole basis [K, Q_m] with [C K, C Q_m]:
// Ĉ = C^{1/2} P C^{1/2} for the projector P onto C^{1/2} span(K), which contains subspace
// iteration's C^{1/2} span(C^m Ω), so C − Ĉ is (Loewner) no larger than subspace iteration's
// at equal passes. A basis of `blocks` blocks (or one that would exceed D columns) restarts:
// the next pass's block is then the top s eigenvectors of this pass's reconstruction, as in
// subspace iteration (blocks = 1: every pass, the historic behaviour, bit for bit).
// Memory: 2 D x m s more than subspace iteration (K and C K), nystrom_peak_bytes().
//
// A-posteriori error: `probes` further Gaussian columns G (an independent stream of the
// same seed) are accumulated alongside, Z = C G, in every pass. For the rank-r
// reconstruction Ĉ, E‖(C − Ĉ) g‖² = ‖C − Ĉ‖_F² for standard Gaussian g independent of Ĉ,
// so sqrt(mean_j ‖Z_j − Ĉ g_j‖²) estimates ‖C − Ĉ‖_F (an upper bound of ‖C − Ĉ‖₂) —
// Tropp et al. 2017, §6 / Halko et al. 2011, §4.3.
#pragma once

#include <cstdint>
#include <istream>
#include <ostream>
#include <string>
#include <vector>

#include "recalign/core/batch.hpp"
#include "recalign/core/serial.hpp"
#include "recalign/core/xt.hpp"
#include "recalign/spectral/spectrum.hpp"
#include "recalign/stats/moments.hpp"

namespace recalign {

namespace detail {
class second_thread;  // lib/sketch/second_thread.hpp
}

// The random test matrix of pass 0 and the probes: ±1 signs (Rademacher: as good a range
// finder as Gaussian in practice, E ggᵀ = I for the probes, and about 100x cheaper to
// regenerate), or standard normals (Box-Muller; states saved before signs existed).
// `automatic` (the default) is resolved by the constructor from D: signs where D >= 64, else
// Gaussian. s independent ±1 columns of length D are then all but certain (two columns agree
// up to sign with probability 2^(1-D) per pair), while a small ±1 matrix is often singular (D = s = 5:
// 5 of 20 seeds in tests/sketch), which breaks Nyström's Cholesky at every shift; Gaussian
// columns are independent with probability 1 at any D. options().test says what was used.
// sparse_signs (opt-in): each row of Ω holds ζ = min(8, s) entries ±1 in distinct random
// columns and zeros elsewhere (the sparse sign matrix of Tropp, Yurtsever, Udell, Cevher 2019,
// §3.3; Martinsson & Tropp 2020, §9.2), so X_b Ω costs ζ additions a value instead of s
// multiply-adds and pass 0's update about half the flops of the dense test matrix (X_bᵀ Z
// stays a GEMM); the probes stay dense signs, and later passes' Q is dense as always. It needs
// D ζ >= 32 s (each column of Ω then holds 32 nonzeros on average, and one left empty, which
// would make Ω rank-deficient, has probability below s e^-32); smaller D are refused.
enum class nystrom_test : std::uint8_t { gaussian = 0, signs = 1, automatic = 2, sparse_signs = 3 };

// Nonzeros a row of the sparse sign test matrix holds for a sketch of s columns.
constexpr std::size_t sparse_sign_nonzeros(std::size_t s) noexcept { return s < 8 ? s : 8; }

struct nystrom_options {
    std::size_t dim = 0;            // D
    std::size_t rank = 0;           // k: eigenpairs a result returns
    std::size_t oversampling = 10;  // p: the sketch has s = k + p columns (s <= D)
    std::size_t probes = 10;        // Gaussian probes of the error estimate (0 = none)
    std::uint64_t seed = 0;
    centering center = centering::centered;
    // Opt-in: for float32 or uint8 input, form X_b T and X_bᵀ (X_b T) with SGEMM (about 2x
    // faster), each batch's product added block by block to the double-precision Y; means,
    // Chan terms and the trace stay in double. The products' relative error is then that of
    // single precision (about 1e-7 times ‖X_b‖², tests/sketch: < 1e-4 of Y). Not part of the
    // configuration: sketches with and without it merge.
    // Either way a batch is converted and centered one block of 1024 columns at a time (twice:
    // once for X_b T, once for X_bᵀ Z), never widened as a whole; between the GEMMs of a large
    // batch (>= 2^20 values) that work is shared with a second thread where BLAS runs on two or
    // more (the same bits either way).
    bool float32_kernels = false;
    nystrom_test test = nystrom_test::automatic;
    // Krylov blocks the basis may hold (>= 1): 1 = subspace iteration; B > 1 = block Krylov
    // over up to B passes (restarting after that, and where B s would exceed D). Part of the
    // configuration from the second pass on: sketches of different B do not merge.
    std::size_t blocks = 1;
};

// Bytes a sketch of these options holds at its largest (state plus the reconstruction's
// copies at the end of its widest pass; not the per-batch scratch), for refusing early.
long double nystrom_peak_bytes(const nystrom_options& options);

class nystrom_sketch {
public:
    static constexpr checkpoint::state_kind kind = checkpoint::state_kind::nystrom;

    explicit nystrom_sketch(const nystrom_options& options);

    // Adds a batch to the current pass. Strong guarantee: a batch of the wrong width or
    // holding NaN/Inf throws std::invalid_argument and leaves the state as it was. A batch of
    // more than 1,024 columns and at least 2^20 values runs on two threads of its own, each with
    // OpenBLAS on one thread (a process-wide setting, restored when the update returns: BLAS
    // calls other threads make meanwhile run on one thread too).
    void update(const batch_view& x, std::uint64_t first_row = 0);

    // Sum of two sketches of the same configuration, pass and (after pass 0) power-iteration
    // basis; anything else throws std::invalid_argument naming both values, before any change.
    // Merging an empty state (no data in its current pass) is a no-op.
    void merge(const nystrom_sketch& other);

    // Ends the current pass (which must have seen data: std::logic_error otherwise) and
    // starts the next with Q = the orthonormal basis of this pass's reconstruction.
    // Strong guarantee: if the reconstruction fails, numerical_error and nothing changes.
    void next_pass();

    void save(std::ostream& os) const { checkpoint::save_state(os, *this); }
    static nystrom_sketch load(std::istream& is) { return checkpoint::load_state<nystrom_sketch>(is); }

    // Samples seen in the current pass.
    std::uint64_t n() const noexcept { return n_; }
    std::size_t dim() const noexcept { return options_.dim; }
    std::uint64_t aux_dim() const noexcept { return options_.rank + options_.oversampling; }
    bool empty() const noexcept { return n_ == 0; }
    const nystrom_options& options() const noexcept { return options_; }
    std::uint64_t config_hash() const;

    // 0 for the first read of the data, 1 after one next_pass(), ...
    std::uint32_t pass() const noexcept { return pass_; }
    std::size_t width() const noexcept { return options_.rank + options_.oversampling; }
    const vector_t& mean() const noexcept { return mean_; }
    // Exact trace of C (the chosen centering) over the current pass.
    double trace() const;
    // The current test matrix [Ω or Q | G] (D x (s + probes)), formed on request (it is
    // regenerated block by block, never kept), and M times it, accumulated.
    matrix_t test_matrix() const;
    // Rows [first, first + count) of [Ω or Q | G] into out (count x (s + probes), row-major).
    template <class T>
    void test_block(std::size_t first, std::size_t count, T* out) const;
    const matrix_t& centered_range() const noexcept { return y_; }
    // Block Krylov: the kept orthonormal blocks K of earlier passes (D x m s; m = 0 at pass 0,
    // after a restart and for blocks = 1) and C K for the chosen centering.
    const matrix_t& krylov_basis() const noexcept { return kq_; }
    const matrix_t& krylov_range() const noexcept { return ky_; }
    // C [Ω or Q | G] for the chosen centering (adds n μ (μᵀ [Ω|G]) when uncentered).
    matrix_t range() const;
    // μᵀ [Ω or Q | G] (s + probes values) when the chosen centering is uncentered and data were
    // seen, else empty: range() = centered_range() + n μ (this)ᵀ. The finish adds that term to
    // the columns it copies anyway instead of copying the whole range (nystrom_spectrum).
    std::vector<double> uncentering() const;

    // The checkpoint payload (recalign/core/serial.hpp), defined in lib/sketch/nystrom_sketch_serial.cpp.
    template <class Archive>
    void save_payload(Archive& ar) const;
    template <class Archive>
    static nystrom_sketch load_payload(Archive& ar, checkpoint::budget& b);

private:
    static nystrom_options validated_options(std::uint64_t dim, std::uint64_t rank, std::uint64_t over,
                                             std::uint64_t probes, std::uint64_t seed, std::uint8_t center, std::uint8_t f32,
                                             std::uint32_t pass, std::uint64_t blocks, const checkpoint::budget& b);
    void check_loaded() const;
    // vᵀ [Ω or Q | G] (length s + probes) for a D-vector v, block by block.
    std::vector<double> project_test(const double* v) const;
    // The two sweeps of one batch over column blocks (T = double, or float for SGEMM).
    template <class T>
    // The element-wise work between their GEMMs is shared with a second thread (internal).
    double first_sweep(const batch_view& x, const double* shift, double* sums, double* sums_t, detail::second_thread& two);
    // The first sweep of pass 0 with the sparse sign test matrix (lib/sketch/nystrom_sparse.cpp).
    template <class T>
    double first_sweep_sparse(const batch_view& x, const double* shift, double* sums, double* sums_t,
                              detail::second_thread& two);
    // Row i of the sparse sign Ω: its ζ signed columns, ±(column + 1), into out.
    void sparse_row(std::size_t i, std::int32_t* out) const;
    void build_sparse_index();
    template <class T>
    void second_sweep(const batch_view& x, const double* shift, double coef, const double* e, const double* et,
                      detail::second_thread& two);
    // The same two sweeps for a batch of at least two column blocks, split by blocks: each of the
    // two threads of `two` converts its half of the blocks and runs their GEMMs itself, with
    // OpenBLAS on one thread for the sweep (lib/sketch/nystrom_halves.cpp).
    template <class T>
    double first_sweep_halves(const batch_view& x, const double* shift, double* sums, double* sums_t,
                              detail::second_thread& two);
    template <class T>
    void second_sweep_halves(const batch_view& x, const double* shift, double coef, const double* e, const double* et,
                             detail::second_thread& two);

    nystrom_options options_;
    std::uint32_t pass_ = 0;
    std::uint64_t n_ = 0;
    double trace_ = 0.0;  // trace of the centered scatter M, current pass
    vector_t mean_;
    matrix_t y_;     // D x (s + probes): M [Ω or Q | G]
    matrix_t q_;     // D x s, the power-iteration basis (pass > 0 only)
    matrix_t kq_, ky_;  // D x m s: the kept Krylov blocks and C times them (blocks > 1 only)
    // Scratch, never serialized: one column block of the batch and of the test matrix, X T.
    std::vector<double> xb_, tb_, zb_, chan_, ssc_;
    std::vector<float> xf_, tf_, zf_, yf_;
    // The same for each half of the column blocks (first_sweep_halves): its block of the batch and
    // of the test matrix, its part of X T (half 0's then holds the sum), of cᵀ T and of Σ X_s².
    struct half_scratch {
        std::vector<double> xb, tb, zb, ssc, st;
        std::vector<float> xf, tf, zf, yf;
        double ss = 0.0;
    };
    half_scratch halves_[2];
    // The sparse first sweep's: the block transposed and Zᵀ; and [Ω | G] of pass 0 by column
    // blocks, each block's nonzeros by column (4 D (ζ + probes) bytes, built at the first update).
    std::vector<double> xtb_, ztb_;
    std::vector<float> xtf_, ztf_;
    std::vector<std::size_t> sparse_ptr_;
    std::vector<std::int32_t> sparse_ent_;
};

struct nystrom_spectrum_options {
    std::size_t rank = 0;  // eigenpairs to return (0 = the sketch's k; at most s = k + p)
};

// Stable PSD Nyström reconstruction (Tropp, Yurtsever, Udell, Cevher 2017, Alg. 3) of the
// current pass: shift ν = √D ε ‖Y‖_F, Cholesky of Ωᵀ(Y + νΩ), SVD of (Y + νΩ) R⁻¹, λ = σ² − ν.
// method "nystrom"; total = exact trace; error_estimate = the probes' estimate of
// ‖C − Ĉ_r‖_F for the returned rank-r Ĉ_r = U_r Λ_r U_rᵀ (NaN without probes).
// Throws std::logic_error if the current pass has seen no data.
spectrum nystrom_spectrum(const nystrom_sketch& sketch, const nystrom_spectrum_options& options = {});

// The stopping rule of a tolerance (CLI --tolerance, Python StreamingPCA(tolerance=)): the
// probes' estimate of ‖C − Ĉ_r‖_F for the current pass's rank-r reconstruction (r = options.rank,
// 0 = the sketch's k), relative to the exact tr(C) (NaN without probes). An estimate, with the
// probes' spread; it includes the tail ‖C − C_r‖_F beyond rank r that no pass removes, so a
// tolerance below that floor is never met. Run another pass (next_pass()) while it exceeds T.
double nystrom_relative_error(const nystrom_sketch& sketch, const nystrom_spectrum_options& options = {});

}  // namespace recalign
