#include "recalign/sketch/nystrom_sketch.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "centered_block.hpp"
#include "nystrom_basis.hpp"
#include "second_thread.hpp"
#include "recalign/core/blas.hpp"
#include "recalign/core/checked.hpp"
#include "recalign/core/errors.hpp"
#include "recalign/core/hash.hpp"
#include "recalign/core/rng.hpp"

namespace recalign {

using detail::centered_block;
using detail::column_block;
using detail::columns;
using detail::half_of;
using detail::reconstruct;
using detail::reconstruction;
using detail::rows_of;

using detail::omega_stream;
using detail::probe_stream;
using detail::sign_omega_stream;
using detail::sign_probe_stream;

namespace {

const char* test_name(nystrom_test t) {
    switch (t) {
        case nystrom_test::gaussian: return "gaussian";
        case nystrom_test::signs: return "signs";
        case nystrom_test::sparse_signs: return "sparse signs";
        default: return "automatic";
    }
}

void check_options(const nystrom_options& o) {
    if (o.dim == 0) throw std::invalid_argument("nystrom_sketch: dimension must be at least 1");
    blas::to_blas_int(o.dim, "dimension");
    if (o.rank == 0) throw std::invalid_argument("nystrom_sketch: rank must be at least 1");
    if (o.oversampling > static_cast<std::size_t>(INT_MAX) || o.rank > static_cast<std::size_t>(INT_MAX) ||
        o.rank + o.oversampling > o.dim)
        throw std::invalid_argument("nystrom_sketch: rank + oversampling = " + std::to_string(o.rank) + " + " +
                                    std::to_string(o.oversampling) + " exceeds the dimension " + std::to_string(o.dim));
    if (o.probes > o.dim)
        throw std::invalid_argument("nystrom_sketch: probes = " + std::to_string(o.probes) + " exceeds the dimension " +
                                    std::to_string(o.dim));
    if (o.center != centering::centered && o.center != centering::uncentered)
        throw std::invalid_argument("nystrom_sketch: unknown centering");
    if (o.test != nystrom_test::gaussian && o.test != nystrom_test::signs && o.test != nystrom_test::sparse_signs &&
        o.test != nystrom_test::automatic)
        throw std::invalid_argument("nystrom_sketch: unknown test matrix");
    const std::size_t s = o.rank + o.oversampling;
    if (o.test == nystrom_test::sparse_signs && o.dim * sparse_sign_nonzeros(s) < 32 * s)  // both below 2^36
        throw std::invalid_argument("nystrom_sketch: the sparse sign test matrix needs D x " +
                                    std::to_string(sparse_sign_nonzeros(s)) + " >= 32 x (rank + oversampling) = " +
                                    std::to_string(32 * s) + " (D = " + std::to_string(o.dim) +
                                    "): use signs at this size");
    if (o.blocks == 0 || o.blocks > UINT32_MAX)
        throw std::invalid_argument("nystrom_sketch: Krylov blocks = " + std::to_string(o.blocks) + " (must lie in [1, 2^32))");
    // Y and the test matrix are D x (k + p + probes): every later offset into them is below this.
    checked_elements<double>({o.dim, checked_add(o.rank + o.oversampling, o.probes, "nystrom_sketch: sketch width")},
                             "nystrom_sketch: D x (k + p + probes) range");
}

std::uint64_t hash_of(const matrix_t& m) { return fnv1a().add_bytes(m.data(), m.size() * sizeof(double)).value(); }

// [a | b] for two matrices of D rows.
matrix_t side_by_side(const matrix_t& a, const matrix_t& b) {
    const std::size_t d = a.shape(0), na = a.shape(1), nb = b.shape(1);
    matrix_t out = xt::zeros<double>({d, na + nb});
    for (std::size_t i = 0; i < d; ++i) {
        if (na) std::memcpy(out.data() + i * (na + nb), a.data() + i * na, na * sizeof(double));
        std::memcpy(out.data() + i * (na + nb) + na, b.data() + i * nb, nb * sizeof(double));
    }
    return out;
}

// Cholesky QR twice: a (D x s) = Q R with Q orthonormal to rounding, a ← Q, and b ← b R⁻¹
// (so C Q from C a). False if a Cholesky factorisation fails (a rank-deficient a).
bool orthonormalize_with(matrix_t& a, matrix_t& b) {
    const std::size_t d = a.shape(0), s = a.shape(1);
    for (int round = 0; round < 2; ++round) {
        matrix_t r = xt::zeros<double>({s, s});
        blas::syrk_tn(s, d, 1.0, a.data(), 0.0, r.data());
        if (blas::potrf_upper(s, r.data()) != 0) return false;
        for (std::size_t i = 0; i < s; ++i)
            for (std::size_t j = 0; j < i; ++j) r(i, j) = 0.0;
        blas::trsm_right_upper(d, s, r.data(), a.data());
        blas::trsm_right_upper(d, s, r.data(), b.data());
    }
    return true;
}

// w ← (I − K Kᵀ) w, twice (block Gram–Schmidt with reorthogonalisation), K orthonormal.
void project_out(const matrix_t& k, matrix_t& w) {
    const std::size_t d = w.shape(0), s = w.shape(1), m = k.shape(1);
    matrix_t c = xt::zeros<double>({m, s});
    for (int round = 0; round < 2; ++round) {
        blas::gemm_tn(m, s, d, 1.0, k.data(), w.data(), 0.0, c.data());
        blas::gemm_nn(d, s, m, -1.0, k.data(), c.data(), 1.0, w.data());
    }
}

// Orthonormal columns spanning w (D x s; its left singular vectors: orthonormal even where w
// is rank-deficient). Throws numerical_error if the SVD fails.
matrix_t orthonormal_basis(matrix_t w) {
    const std::size_t d = w.shape(0), s = w.shape(1);
    matrix_t u = xt::zeros<double>({d, s}), vt = xt::zeros<double>({s, s});
    vector_t sv = xt::zeros<double>({s});
    const int info = blas::gesdd_thin_notrans(d, s, w.data(), sv.data(), u.data(), vt.data());
    if (info != 0) throw numerical_error("nystrom_sketch::next_pass: the SVD of the next Krylov block failed (LAPACK info " +
                                         std::to_string(info) + ")");
    return u;
}

}  // namespace

nystrom_sketch::nystrom_sketch(const nystrom_options& options) : options_(options) {
    if (options_.test == nystrom_test::automatic)
        options_.test = options_.dim >= 64 ? nystrom_test::signs : nystrom_test::gaussian;
    check_options(options_);
    const std::size_t d = options_.dim, w = width() + options_.probes;
    mean_ = xt::zeros<double>({d});
    y_ = xt::zeros<double>({d, w});
    kq_ = xt::zeros<double>({d, std::size_t{0}});
    ky_ = xt::zeros<double>({d, std::size_t{0}});
}

long double nystrom_peak_bytes(const nystrom_options& o) {
    const long double d = static_cast<long double>(o.dim), s = static_cast<long double>(o.rank + o.oversampling),
                      t = static_cast<long double>(o.probes);
    // The widest basis: min(blocks, D / s) blocks of s columns (at least the current one).
    const std::size_t fit = o.rank + o.oversampling == 0 ? 1 : o.dim / (o.rank + o.oversampling);
    const long double w = s * static_cast<long double>(std::max<std::size_t>(1, std::min(o.blocks, fit)));
    // State: Y and its copy in range() (2 (s + t)), Q (s), K and C K (2 (W − s)), the mean;
    // the reconstruction: [C K | Y_s] + νΩ, and U (2 W); next_pass's new state (2 W + s + t).
    // The sparse sign Ω's index of pass 0 (nystrom_sparse.cpp): 4 bytes a nonzero of [Ω | G].
    const long double index = o.test == nystrom_test::sparse_signs
                                  ? 4.0L * d * (static_cast<long double>(sparse_sign_nonzeros(o.rank + o.oversampling)) + t)
                                  : 0.0L;
    return 8.0L * d * (2.0L * (s + t) + s + 2.0L * (w - s) + 1.0L + 2.0L * w + 2.0L * w + s + t) + index;
}

template <class T>
void nystrom_sketch::test_block(std::size_t first, std::size_t count, T* out) const {
    const std::size_t s = width(), t = options_.probes, w = s + t;
    const bool sparse = options_.test == nystrom_test::sparse_signs;
    const bool signs = options_.test == nystrom_test::signs || sparse;
    // One stream per row of the matrix and per part (Ω, G): a row is the same whatever block
    // it is generated in.
    auto fill = [&](std::uint64_t id, std::size_t i, T* row, std::size_t m) {
        const rng::stream st(options_.seed, id, i);
        if (signs) {
            for (std::size_t j0 = 0; j0 < m; j0 += 64) {
                const std::uint64_t bits = st.bits(j0 / 64);
                const std::size_t e = std::min<std::size_t>(64, m - j0);
                for (std::size_t j = 0; j < e; ++j) row[j0 + j] = static_cast<T>(1.0 - 2.0 * static_cast<double>((bits >> j) & 1u));
            }
        } else {
            for (std::size_t j = 0; j < m; ++j) row[j] = static_cast<T>(st.normal(j));
        }
    };
    const std::uint64_t omega_id = signs ? sign_omega_stream : omega_stream;
    const std::uint64_t probe_id = signs ? sign_probe_stream : probe_stream;
    for (std::size_t r = 0; r < count; ++r) {
        const std::size_t i = first + r;
        T* row = out + r * w;
        if (pass_ == 0) {
            if (sparse) {
                std::int32_t cols[8];
                sparse_row(i, cols);
                std::fill(row, row + s, T(0));
                for (std::size_t k = 0; k < sparse_sign_nonzeros(s); ++k)
                    row[static_cast<std::size_t>(std::abs(cols[k])) - 1] = cols[k] > 0 ? T(1) : T(-1);
            } else {
                fill(omega_id, i, row, s);
            }
        } else {
            const double* q = q_.data() + i * s;
            for (std::size_t j = 0; j < s; ++j) row[j] = static_cast<T>(q[j]);
        }
        fill(probe_id, i, row + s, t);
    }
}

matrix_t nystrom_sketch::test_matrix() const {
    matrix_t t = xt::zeros<double>({options_.dim, width() + options_.probes});
    test_block(0, options_.dim, t.data());
    return t;
}

std::vector<double> nystrom_sketch::project_test(const double* v) const {
    const std::size_t d = options_.dim, w = width() + options_.probes;
    std::vector<double> out(w, 0.0), block(std::min(d, column_block) * w);
    for (std::size_t c0 = 0; c0 < d; c0 += column_block) {
        const std::size_t cb = std::min(column_block, d - c0);
        test_block(c0, cb, block.data());
        blas::gemm_tn(1, w, cb, 1.0, v + c0, block.data(), 1.0, out.data());
    }
    return out;
}

std::uint64_t nystrom_sketch::config_hash() const {
    fnv1a h;
    h.add(std::string_view("nystrom_sketch"))
        .add(static_cast<std::uint64_t>(options_.dim))
        .add(static_cast<std::uint64_t>(options_.rank))
        .add(static_cast<std::uint64_t>(options_.oversampling))
        .add(static_cast<std::uint64_t>(options_.probes))
        .add(options_.seed)
        .add(static_cast<std::uint64_t>(options_.center));
    if (options_.blocks != 1) h.add(std::string_view("krylov blocks")).add(static_cast<std::uint64_t>(options_.blocks));
    // Gaussian states keep the hash they had before the test matrix became a choice.
    if (options_.test != nystrom_test::gaussian) h.add(std::string_view("test")).add(static_cast<std::uint64_t>(options_.test));
    return h.value();
}

double nystrom_sketch::trace() const {
    return trace_in(options_.center, trace_, n_, mean_);
}

std::vector<double> nystrom_sketch::uncentering() const {
    if (options_.center != centering::uncentered || n_ == 0) return {};
    return project_test(mean_.data());
}

matrix_t nystrom_sketch::range() const {
    matrix_t y = y_;
    const std::vector<double> mt = uncentering();  // S T = M T + n μ (μᵀ T)  (MATH.md §1)
    if (!mt.empty()) blas::ger(options_.dim, y_.shape(1), static_cast<double>(n_), mean_.data(), mt.data(), y.data());
    return y;
}

// Sweep 1 over column blocks of the batch, shifted by s (X_s = X_b − 1 sᵀ): Z = X_s T, the
// column sums c = 1ᵀ X_s, cᵀ T and Σ X_s², each block of X_s converted into cache-sized
// scratch and each block of T regenerated (both shared between the two threads of `two`, by
// columns of X_s and rows of T); nothing of the state changes. Returns Σ X_s².
template <class T>
double nystrom_sketch::first_sweep(const batch_view& x, const double* shift, double* sums, double* sums_t,
                                   detail::second_thread& two) {
    constexpr bool single = std::is_same_v<T, float>;
    const std::size_t d = options_.dim, rows = x.rows, w = y_.shape(1);
    std::vector<T>& xs = [this]() -> std::vector<T>& { if constexpr (single) return xf_; else return xb_; }();
    std::vector<T>& zs = [this]() -> std::vector<T>& { if constexpr (single) return zf_; else return zb_; }();
    std::fill(zs.begin(), zs.begin() + static_cast<std::ptrdiff_t>(rows * w), T(0));
    double ss = 0.0;
    for (std::size_t c0 = 0; c0 < d; c0 += column_block) {
        const std::size_t cb = std::min(column_block, d - c0);
        auto prepare = [&](int part) {
            const auto [lo, hi] = half_of(cb, part);
            std::fill(ssc_.begin() + static_cast<std::ptrdiff_t>(lo), ssc_.begin() + static_cast<std::ptrdiff_t>(hi), 0.0);
            centered_block(x, shift, c0, cb, lo, hi, xs.data(), sums + c0, ssc_.data());
            test_block(c0 + lo, hi - lo, tb_.data() + lo * w);
            if constexpr (single)
                for (std::size_t i = lo * w; i < hi * w; ++i) tf_[i] = static_cast<float>(tb_[i]);
        };
        two.run(prepare);
        for (std::size_t c = 0; c < cb; ++c) ss += ssc_[c];
        blas::gemm_tn(1, w, cb, 1.0, sums + c0, tb_.data(), 1.0, sums_t);  // cᵀ T
        if constexpr (single)
            blas::gemm_nn(rows, w, cb, 1.0f, xs.data(), tf_.data(), 1.0f, zs.data());
        else
            blas::gemm_nn(rows, w, cb, 1.0, xs.data(), tb_.data(), 1.0, zs.data());  // Z += X_s[:, block] T[block]
    }
    return ss;
}

// Sweep 2: the same blocks again, Y[block] += X_s[:, block]ᵀ Z + coef e[block] (eᵀ T) (the
// rank-one term of update(), added while the block of Y is in cache: one pass over Y per
// batch). In single precision each block's SGEMM product is added to Y in double, by both
// threads alongside the conversion of the next block (one hand-over per block).
template <class T>
void nystrom_sketch::second_sweep(const batch_view& x, const double* shift, double coef, const double* e,
                                  const double* et, detail::second_thread& two) {
    constexpr bool single = std::is_same_v<T, float>;
    const std::size_t d = options_.dim, rows = x.rows, w = y_.shape(1);
    std::vector<T>& xs = [this]() -> std::vector<T>& { if constexpr (single) return xf_; else return xb_; }();
    std::vector<T>& zs = [this]() -> std::vector<T>& { if constexpr (single) return zf_; else return zb_; }();
    // Rows [lo, hi) of the float32 product of the block at p0 (p0 = d: none), added to Y.
    auto add_rows = [&](std::size_t p0, std::size_t lo, std::size_t hi) {
        for (std::size_t i = lo; i < hi; ++i) {
            const double ce = coef * e[p0 + i];
            double* yr = y_.data() + (p0 + i) * w;
            const float* fr = yf_.data() + i * w;
            for (std::size_t j = 0; j < w; ++j) yr[j] += static_cast<double>(fr[j]) + ce * et[j];
        }
    };
    std::size_t p0 = d, pb = 0;  // the block whose product waits in yf_
    for (std::size_t c0 = 0; c0 < d; c0 += column_block) {
        const std::size_t cb = std::min(column_block, d - c0);
        auto prepare = [&](int part) {
            const auto [lo, hi] = half_of(cb, part);
            centered_block(x, shift, c0, cb, lo, hi, xs.data(), static_cast<double*>(nullptr), static_cast<double*>(nullptr));
            if constexpr (single) {
                if (p0 < d) {
                    const auto [plo, phi] = half_of(pb, part);
                    add_rows(p0, plo, phi);
                }
            }
        };
        two.run(prepare);
        double* yblock = y_.data() + c0 * w;
        if constexpr (single) {
            blas::gemm_tn(cb, w, rows, 1.0f, xs.data(), zs.data(), 0.0f, yf_.data());
            p0 = c0, pb = cb;
        } else {
            blas::gemm_tn(cb, w, rows, 1.0, xs.data(), zs.data(), 1.0, yblock);
            blas::ger(cb, w, coef, e + c0, et, yblock);  // while the block is in cache
        }
    }
    if constexpr (single) {
        auto last = [&](int part) {
            const auto [plo, phi] = half_of(pb, part);
            add_rows(p0, plo, phi);
        };
        if (p0 < d) two.run(last);
    }
}

// One batch, shifted by s = the running mean (the batch's first row for the first batch) so
// that no separate pass computes the batch mean first. With e = m_b − s the batch's centered
// scatter is X_sᵀ X_s − n_b e eᵀ, and Chan's cross term (n_a n_b / n) δ δᵀ has δ = m_b − μ = e
// (n_a > 0) or vanishes (n_a = 0): Y += X_sᵀ (X_s T) + (n_a n_b / n − n_b) e (eᵀ T), and the
// same for the trace (MATH.md §1).
void nystrom_sketch::update(const batch_view& x, std::uint64_t first_row) {
    const std::size_t d = options_.dim, rows = x.rows, w = y_.shape(1);
    const bool single = options_.float32_kernels && (x.type == dtype::f32 || x.type == dtype::u8);
    // --- validation, scratch and the first sweep: the state does not change here ---
    blas::to_blas_int(rows, "batch rows");
    checked_elements<double>({rows, std::max(d, w)}, "nystrom_sketch: batch rows x D");
    {
        double none = 0.0;
        to_double_checked(rows_of(x, 0, 0), d, &none, first_row);  // the width, named as everywhere
    }
    if (rows == 0) return;
    chan_.assign(2 * d + w, 0.0);
    double* shift = chan_.data();
    double* e = chan_.data() + d;
    double* et = chan_.data() + 2 * d;
    const std::uint64_t na = n_, n = na + rows;
    if (na > 0)
        std::copy(mean_.begin(), mean_.end(), shift);
    else
        to_double_checked(rows_of(x, 0, 1), d, shift, first_row);  // also refuses a bad pointer, type or scale
    const std::size_t cbmax = std::min(d, column_block);
    // A second thread for the work between the GEMMs where there is enough of it per block to
    // pay for the hand-over (a block of at least 64 Ki elements) and for starting the thread
    // (a batch of at least 1 Mi elements).
    const bool shared = rows * cbmax >= (std::size_t{1} << 16) && rows * d >= (std::size_t{1} << 20);
    detail::second_thread two(shared);
    const bool sparse = pass_ == 0 && options_.test == nystrom_test::sparse_signs;
    // Two column blocks or more: the dense sweeps split by blocks (nystrom_halves.cpp, with
    // scratch of their own), each thread its own GEMMs; decided by the batch's shape alone, so
    // the bits are the same on any machine (the halves' sums are added in the same order with or
    // without the thread).
    const bool halves = shared && d > column_block;
    if (!halves || sparse) {
        tb_.resize(cbmax * w);
        ssc_.resize(cbmax);
        if (single) {
            xf_.resize(rows * cbmax), zf_.resize(rows * w), tf_.resize(cbmax * w), yf_.resize(cbmax * w);
        } else {
            xb_.resize(rows * cbmax), zb_.resize(rows * w);
        }
    }
    const double ss = sparse   ? (single ? first_sweep_sparse<float>(x, shift, e, et, two)
                                         : first_sweep_sparse<double>(x, shift, e, et, two))
                      : halves ? (single ? first_sweep_halves<float>(x, shift, e, et, two)
                                         : first_sweep_halves<double>(x, shift, e, et, two))
                               : (single ? first_sweep<float>(x, shift, e, et, two) : first_sweep<double>(x, shift, e, et, two));
    for (std::size_t c = 0; c < d; ++c) {
        if (!std::isfinite(e[c])) {
            // A NaN/Inf makes its column sum non-finite: find it row by row to name it.
            std::vector<double> row(d);
            for (std::size_t r = 0; r < rows; ++r) to_double_checked(rows_of(x, r, 1), d, row.data(), first_row + r);
            throw input_error("batch at row " + std::to_string(first_row) + ", column " + std::to_string(c) +
                              ": column sum overflows (values too large)");
        }
    }
    const double inv = 1.0 / static_cast<double>(rows);
    double e2 = 0.0;
    for (std::size_t c = 0; c < d; ++c) {
        e[c] *= inv;
        e2 += e[c] * e[c];
    }
    for (std::size_t j = 0; j < w; ++j) et[j] *= inv;
    const double cw = static_cast<double>(na) * static_cast<double>(rows) / static_cast<double>(n);
    const double coef = cw - static_cast<double>(rows);

    // --- the state changes from here on; nothing below can fail ---
    if (halves && !sparse)
        single ? second_sweep_halves<float>(x, shift, coef, e, et, two) : second_sweep_halves<double>(x, shift, coef, e, et, two);
    else if (single)
        second_sweep<float>(x, shift, coef, e, et, two);
    else
        second_sweep<double>(x, shift, coef, e, et, two);
    const double f = static_cast<double>(rows) / static_cast<double>(n);
    if (na > 0)
        for (std::size_t c = 0; c < d; ++c) mean_(c) += e[c] * f;
    else
        for (std::size_t c = 0; c < d; ++c) mean_(c) = shift[c] + e[c];
    // Exactly >= 0; rounding could take a batch of equal rows a hair below.
    trace_ = std::max(0.0, trace_ + ss + coef * e2);
    n_ = n;
}

void nystrom_sketch::merge(const nystrom_sketch& other) {
    const nystrom_options &a = options_, &b = other.options_;
    auto refuse = [](const std::string& what, const std::string& x, const std::string& y) {
        throw std::invalid_argument("cannot merge Nyström sketches of " + what + " " + x + " and " + y);
    };
    if (a.dim != b.dim) refuse("dimension", std::to_string(a.dim), std::to_string(b.dim));
    if (a.rank != b.rank || a.oversampling != b.oversampling)
        refuse("shape (rank + oversampling)", std::to_string(a.rank) + " + " + std::to_string(a.oversampling),
               std::to_string(b.rank) + " + " + std::to_string(b.oversampling));
    if (a.probes != b.probes) refuse("probes", std::to_string(a.probes), std::to_string(b.probes));
    if (a.seed != b.seed) refuse("seed", std::to_string(a.seed), std::to_string(b.seed));
    if (a.center != b.center) refuse("centering", centering_name(a.center), centering_name(b.center));
    if (a.test != b.test)
        refuse("test matrix", test_name(a.test), test_name(b.test));
    if (a.blocks != b.blocks) refuse("Krylov blocks", std::to_string(a.blocks), std::to_string(b.blocks));
    if (pass_ != other.pass_) refuse("pass", std::to_string(pass_), std::to_string(other.pass_));
    // Same shape and bytes (an empty matrix has no data pointer: memcmp must not see it).
    const auto same = [](const matrix_t& x, const matrix_t& y) {
        return x.shape() == y.shape() && (x.size() == 0 || std::memcmp(x.data(), y.data(), x.size() * sizeof(double)) == 0);
    };
    if (pass_ > 0 && !same(q_, other.q_))
        refuse("power-iteration basis (hash)", std::to_string(hash_of(q_)), std::to_string(hash_of(other.q_)));
    for (auto [mine, theirs] : {std::pair{&kq_, &other.kq_}, std::pair{&ky_, &other.ky_}})
        if (!same(*mine, *theirs))
            refuse("Krylov basis (hash)", std::to_string(hash_of(*mine)), std::to_string(hash_of(*theirs)));
    if (other.n_ == 0) return;
    const std::size_t d = a.dim, w = y_.shape(1);
    // Copy what we read from `other` first: it may be *this.
    const matrix_t y_b = other.y_;
    const vector_t mean_b = other.mean_;
    const std::uint64_t nb = other.n_, na = n_, n = na + nb;
    const double trace_b = other.trace_;
    const double cw = static_cast<double>(na) * static_cast<double>(nb) / static_cast<double>(n);
    vector_t delta = mean_b - mean_;
    double d2 = 0.0;
    for (double v : delta) d2 += v * v;
    const std::vector<double> dt = na > 0 ? project_test(delta.data()) : std::vector<double>(w, 0.0);

    y_ += y_b;
    if (na > 0) blas::ger(d, w, cw, delta.data(), dt.data(), y_.data());
    const double f = static_cast<double>(nb) / static_cast<double>(n);
    for (std::size_t c = 0; c < d; ++c) mean_(c) += delta(c) * f;
    trace_ += trace_b + cw * d2;
    n_ = n;
}

void nystrom_sketch::next_pass() {
    if (n_ == 0) throw std::logic_error("nystrom_sketch::next_pass: pass " + std::to_string(pass_) + " has seen no data");
    if (pass_ == UINT32_MAX) throw std::logic_error("nystrom_sketch::next_pass: too many passes");
    // Build everything first, then swap in (strong guarantee).
    const std::size_t d = options_.dim, s = width(), ms = kq_.shape(1);
    nystrom_sketch next(options_);
    next.pass_ = pass_ + 1;
    if (options_.blocks > 1 && ms / s + 2 <= options_.blocks && ms + 2 * s <= d) {
        // Block Krylov: keep this pass's block, orthonormalised (Q_m = T_s R⁻¹, C Q_m = Y_s R⁻¹),
        // and test the next pass with C Q_m, span(K, Q_m) projected out.
        matrix_t block = columns(test_matrix(), 0, s), product = columns(range(), 0, s);
        if (!orthonormalize_with(block, product))
            throw numerical_error("nystrom_sketch::next_pass: the test block of pass " + std::to_string(pass_) +
                                  " is rank-deficient (Cholesky QR failed)");
        next.kq_ = side_by_side(kq_, block);
        next.ky_ = side_by_side(ky_, product);
        project_out(next.kq_, product);
        matrix_t q = orthonormal_basis(std::move(product));
        project_out(next.kq_, q);  // the SVD's directions for a rank-deficient block, too
        next.q_ = orthonormal_basis(std::move(q));
    } else {
        // Subspace iteration (or a restart of the Krylov basis): the top s eigenvectors of
        // this pass's reconstruction.
        reconstruction r = reconstruct(*this, range());
        if (r.info != 0)
            throw numerical_error("nystrom_sketch::next_pass: the reconstruction of pass " + std::to_string(pass_) +
                                  " failed (LAPACK info " + std::to_string(r.info) + ")");
        next.q_ = r.u.shape(1) == s ? std::move(r.u) : columns(r.u, 0, s);
    }
    *this = std::move(next);
}

nystrom_options nystrom_sketch::validated_options(std::uint64_t dim, std::uint64_t rank, std::uint64_t over,
                                                  std::uint64_t probes, std::uint64_t seed, std::uint8_t center, std::uint8_t f32,
                                                  std::uint32_t pass, std::uint64_t blocks, const checkpoint::budget& b) {
    if (dim == 0 || dim > checkpoint::max_dim) throw std::length_error("dimension " + std::to_string(dim) + " out of range");
    if (rank == 0 || rank > dim || over > dim - rank) throw std::length_error("rank + oversampling out of range");
    if (probes > dim) throw std::length_error("probes out of range");
    if (center != 1 && center != 2) throw std::length_error("unknown centering " + std::to_string(center));
    // Bit 0: float32 kernels; bit 1: a ±1 test matrix (states saved before it have 0 there:
    // Gaussian, which they keep); bit 2: block Krylov, its blocks and basis following (states
    // saved before it: subspace iteration, blocks = 1). Anything else is a newer format this
    // build cannot continue.
    if (blocks == 0 || blocks > UINT32_MAX || ((f32 & 4) != 0) != (blocks > 1))
        throw std::length_error("Krylov blocks " + std::to_string(blocks) + " out of range");
    if (f32 > 15 || (f32 & 10) == 10) throw std::length_error("unknown Nyström flags " + std::to_string(f32) + " (a newer format?)");
    // The constructor allocates D x (s + probes) twice and the mean; the payload must hold
    // the state's own copy of Y, the mean and (after pass 0) Q before anything is allocated.
    const std::uint64_t words = b.left / 8, w = rank + over + probes;  // each <= dim <= 2^31
    const std::uint64_t need = checked_mul(dim, pass > 0 ? w + 1 + rank + over : w + 1, "nystrom checkpoint: state size");
    if (need > words) throw std::length_error("the payload is too small for the state its configuration announces");
    nystrom_options o;
    o.dim = static_cast<std::size_t>(dim);
    o.rank = static_cast<std::size_t>(rank);
    o.oversampling = static_cast<std::size_t>(over);
    o.probes = static_cast<std::size_t>(probes);
    o.seed = seed;
    o.center = static_cast<centering>(center);
    o.float32_kernels = (f32 & 1) != 0;
    o.test = (f32 & 8) != 0 ? nystrom_test::sparse_signs : (f32 & 2) != 0 ? nystrom_test::signs : nystrom_test::gaussian;
    o.blocks = static_cast<std::size_t>(blocks);
    check_options(o);
    return o;
}

void nystrom_sketch::check_loaded() const {
    const std::size_t d = options_.dim, s = width(), w = s + options_.probes;
    auto bad = [](const char* what) { throw std::length_error(std::string(what) + " has the wrong shape"); };
    if (mean_.shape(0) != d) bad("mean");
    if (y_.shape(0) != d || y_.shape(1) != w) bad("Y");
    if (pass_ > 0 && (q_.shape(0) != d || q_.shape(1) != s)) bad("Q");
    const std::size_t ms = kq_.shape(1);
    if (kq_.shape(0) != d || ky_.shape(0) != d || ky_.shape(1) != ms || ms % s != 0 || ms + s > d ||
        ms / s + 1 > options_.blocks || (pass_ == 0 && ms != 0))
        bad("Krylov basis");
    if (!(trace_ >= 0.0) || !std::isfinite(trace_)) throw std::length_error("trace is negative or not finite");
}

template void nystrom_sketch::test_block(std::size_t, std::size_t, double*) const;
template void nystrom_sketch::test_block(std::size_t, std::size_t, float*) const;

}  // namespace recalign
