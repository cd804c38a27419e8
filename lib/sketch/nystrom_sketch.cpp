#include "recalign/sketch/nystrom_sketch.hpp"

#include <algorithm>
#include <cfloat>
#include <climits>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "recalign/core/blas.hpp"
#include "recalign/core/checked.hpp"
#include "recalign/core/errors.hpp"
#include "recalign/core/hash.hpp"
#include "recalign/core/rng.hpp"
#include "recalign/spectral/eigen.hpp"

namespace recalign {

namespace {
// Stream ids of the two Gaussian matrices (row i of each is stream (seed, id, i)).
constexpr std::uint64_t omega_stream = 0, probe_stream = 1;

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
    // Y and the test matrix are D x (k + p + probes): every later offset into them is below this.
    checked_elements<double>({o.dim, checked_add(o.rank + o.oversampling, o.probes, "nystrom_sketch: sketch width")},
                             "nystrom_sketch: D x (k + p + probes) range");
}

std::uint64_t hash_of(const matrix_t& m) { return fnv1a().add_bytes(m.data(), m.size() * sizeof(double)).value(); }

// Columns [first, first + count) of a row-major matrix, as their own matrix.
matrix_t columns(const matrix_t& a, std::size_t first, std::size_t count) {
    const std::size_t rows = a.shape(0), cols = a.shape(1);
    matrix_t out = xt::zeros<double>({rows, count});
    for (std::size_t i = 0; i < rows; ++i)
        std::memcpy(out.data() + i * count, a.data() + i * cols + first, count * sizeof(double));
    return out;
}

struct reconstruction {
    matrix_t u;       // D x s, orthonormal columns, descending λ
    vector_t lambda;  // s, >= 0
    double nu = 0.0;
    int info = 0;  // first failing LAPACK info (0 = fine)
    solver_status status = solver_status::converged;  // what that info means
};

// Tropp, Yurtsever, Udell, Cevher 2017, Algorithm 3 (stable Nyström for a PSD matrix from
// Y = A Ω): the shift ν keeps the Cholesky factorisation of Ωᵀ(Y + νΩ) away from rounding
// trouble; σ² − ν undoes it. If the Cholesky still fails the shift grows (a few times).
reconstruction reconstruct(const matrix_t& y, const matrix_t& omega) {
    const std::size_t d = y.shape(0), s = y.shape(1);
    reconstruction r;
    double norm = 0.0;
    for (double v : y) norm += v * v;
    norm = std::sqrt(norm);
    const bool zero = norm == 0.0;
    r.nu = zero ? 1.0 : std::sqrt(static_cast<double>(d)) * DBL_EPSILON * norm;
    matrix_t yn, b;
    for (int attempt = 0; attempt < 6; ++attempt) {
        yn = y + r.nu * omega;
        b = xt::zeros<double>({s, s});
        blas::gemm_tn(s, s, d, 1.0, omega.data(), yn.data(), 0.0, b.data());
        for (std::size_t i = 0; i < s; ++i)
            for (std::size_t j = i + 1; j < s; ++j) b(i, j) = 0.5 * (b(i, j) + b(j, i));
        r.info = blas::potrf_upper(s, b.data());
        if (r.info == 0) break;
        r.nu *= 100.0;
    }
    if (r.info != 0) {
        r.status = solver_status::breakdown;
        return r;
    }
    blas::trsm_right_upper(d, s, b.data(), yn.data());  // E = (Y + νΩ) R⁻¹
    vector_t sv = xt::zeros<double>({s});
    r.u = xt::zeros<double>({d, s});
    matrix_t vt = xt::zeros<double>({s, s});
    r.info = blas::gesdd_thin(d, s, yn.data(), sv.data(), r.u.data(), vt.data());
    r.status = solver_status_of(r.info);
    r.lambda = xt::zeros<double>({s});
    for (std::size_t i = 0; i < s; ++i) r.lambda(i) = zero ? 0.0 : std::max(sv(i) * sv(i) - r.nu, 0.0);
    return r;
}
}  // namespace

nystrom_sketch::nystrom_sketch(const nystrom_options& options) : options_(options) {
    check_options(options_);
    const std::size_t d = options_.dim, w = width() + options_.probes;
    mean_ = xt::zeros<double>({d});
    y_ = xt::zeros<double>({d, w});
    build_test_matrix();
}

void nystrom_sketch::build_test_matrix() {
    const std::size_t d = options_.dim, s = width(), t = options_.probes, w = s + t;
    test_ = xt::zeros<double>({d, w});
    for (std::size_t i = 0; i < d; ++i) {
        double* row = test_.data() + i * w;
        if (pass_ == 0) {
            const rng::stream om(options_.seed, omega_stream, i);
            for (std::size_t j = 0; j < s; ++j) row[j] = om.normal(j);
        } else {
            std::memcpy(row, q_.data() + i * s, s * sizeof(double));
        }
        const rng::stream pr(options_.seed, probe_stream, i);
        for (std::size_t j = 0; j < t; ++j) row[s + j] = pr.normal(j);
    }
    test_f_.clear();
    if (options_.float32_kernels) test_f_.assign(test_.begin(), test_.end());
}

std::uint64_t nystrom_sketch::config_hash() const {
    return fnv1a()
        .add(std::string_view("nystrom_sketch"))
        .add(static_cast<std::uint64_t>(options_.dim))
        .add(static_cast<std::uint64_t>(options_.rank))
        .add(static_cast<std::uint64_t>(options_.oversampling))
        .add(static_cast<std::uint64_t>(options_.probes))
        .add(options_.seed)
        .add(static_cast<std::uint64_t>(options_.center))
        .value();
}

double nystrom_sketch::trace() const {
    return trace_in(options_.center, trace_, n_, mean_);
}

matrix_t nystrom_sketch::range() const {
    matrix_t y = y_;
    if (options_.center == centering::uncentered && n_ > 0) {
        // S T = M T + n μ (μᵀ T)  (MATH.md §1).
        const std::size_t d = options_.dim, w = y_.shape(1);
        vector_t mt = xt::zeros<double>({w});
        blas::gemm_tn(1, w, d, 1.0, mean_.data(), test_.data(), 0.0, mt.data());
        blas::ger(d, w, static_cast<double>(n_), mean_.data(), mt.data(), y.data());
    }
    return y;
}

void nystrom_sketch::update(const batch_view& x, std::uint64_t first_row) {
    const std::size_t d = options_.dim, rows = x.rows, w = y_.shape(1);
    const bool single = options_.float32_kernels && x.type == dtype::f32;
    // --- validation, conversion and every allocation: the state does not change here ---
    blas::to_blas_int(rows, "batch rows");
    checked_elements<double>({rows, std::max(d, w)}, "nystrom_sketch: batch rows x D");
    if (single) {
        xf_.resize(rows * d);
        to_float_checked(x, d, xf_.data(), first_row);
    } else {
        xb_.resize(rows * d);
        to_double_checked(x, d, xb_.data(), first_row);
    }
    if (rows == 0) return;
    chan_.resize(2 * d + w);
    double* mean_b = chan_.data();
    double* delta = chan_.data() + d;
    double* dt = chan_.data() + 2 * d;
    std::fill(mean_b, mean_b + d, 0.0);
    double trace_b = 0.0;
    const double inv = 1.0 / static_cast<double>(rows);
    if (single) {
        for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t c = 0; c < d; ++c) mean_b[c] += static_cast<double>(xf_[r * d + c]);
        for (std::size_t c = 0; c < d; ++c) mean_b[c] *= inv;
        for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t c = 0; c < d; ++c) {
                const double v = static_cast<double>(xf_[r * d + c]) - mean_b[c];
                xf_[r * d + c] = static_cast<float>(v);
                trace_b += v * v;
            }
        zf_.resize(rows * w);
        yf_.resize(d * w);
        blas::gemm_nn(rows, w, d, 1.0f, xf_.data(), test_f_.data(), 0.0f, zf_.data());  // X_b T
        blas::gemm_tn(d, w, rows, 1.0f, xf_.data(), zf_.data(), 0.0f, yf_.data());       // X_bᵀ (X_b T)
    } else {
        for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t c = 0; c < d; ++c) mean_b[c] += xb_[r * d + c];
        for (std::size_t c = 0; c < d; ++c) mean_b[c] *= inv;
        for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t c = 0; c < d; ++c) {
                const double v = xb_[r * d + c] - mean_b[c];
                xb_[r * d + c] = v;
                trace_b += v * v;
            }
        zb_.resize(rows * w);
        blas::gemm_nn(rows, w, d, 1.0, xb_.data(), test_.data(), 0.0, zb_.data());  // X_b T
    }
    const std::uint64_t na = n_, n = na + rows;
    const double cw = static_cast<double>(na) * static_cast<double>(rows) / static_cast<double>(n);
    double d2 = 0.0;
    for (std::size_t c = 0; c < d; ++c) {
        delta[c] = mean_b[c] - mean_(c);
        d2 += delta[c] * delta[c];
    }
    if (na > 0) blas::gemm_tn(1, w, d, 1.0, delta, test_.data(), 0.0, dt);  // δᵀ T

    // --- the state changes from here on; nothing below can fail ---
    if (single) {
        double* y = y_.data();
        for (std::size_t i = 0; i < d * w; ++i) y[i] += static_cast<double>(yf_[i]);
    } else {
        blas::gemm_tn(d, w, rows, 1.0, xb_.data(), zb_.data(), 1.0, y_.data());  // Y += X_bᵀ (X_b T)
    }
    if (na > 0) blas::ger(d, w, cw, delta, dt, y_.data());  // Chan: (n_a n_b / n) δ (δᵀ T)
    const double f = static_cast<double>(rows) / static_cast<double>(n);
    for (std::size_t c = 0; c < d; ++c) mean_(c) += delta[c] * f;
    trace_ += trace_b + cw * d2;
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
    if (pass_ != other.pass_) refuse("pass", std::to_string(pass_), std::to_string(other.pass_));
    if (pass_ > 0 && !(q_.shape() == other.q_.shape() &&
                       std::memcmp(q_.data(), other.q_.data(), q_.size() * sizeof(double)) == 0))
        refuse("power-iteration basis (hash)", std::to_string(hash_of(q_)), std::to_string(hash_of(other.q_)));
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
    vector_t dt = xt::zeros<double>({w});
    if (na > 0) blas::gemm_tn(1, w, d, 1.0, delta.data(), test_.data(), 0.0, dt.data());

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
    const std::size_t s = width();
    const matrix_t y = range();
    reconstruction r = reconstruct(columns(y, 0, s), columns(test_, 0, s));
    if (r.info != 0)
        throw numerical_error("nystrom_sketch::next_pass: the reconstruction of pass " + std::to_string(pass_) +
                              " failed (LAPACK info " + std::to_string(r.info) + ")");
    // Build everything first, then swap in (strong guarantee).
    nystrom_sketch next(options_);
    next.pass_ = pass_ + 1;
    next.q_ = std::move(r.u);
    next.build_test_matrix();
    *this = std::move(next);
}

nystrom_options nystrom_sketch::validated_options(std::uint64_t dim, std::uint64_t rank, std::uint64_t over,
                                                  std::uint64_t probes, std::uint64_t seed, std::uint8_t center, std::uint8_t f32,
                                                  std::uint32_t pass, const checkpoint::budget& b) {
    if (dim == 0 || dim > checkpoint::max_dim) throw std::length_error("dimension " + std::to_string(dim) + " out of range");
    if (rank == 0 || rank > dim || over > dim - rank) throw std::length_error("rank + oversampling out of range");
    if (probes > dim) throw std::length_error("probes out of range");
    if (center != 1 && center != 2) throw std::length_error("unknown centering " + std::to_string(center));
    if (f32 > 1) throw std::length_error("bad float32 flag");
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
    o.float32_kernels = f32 != 0;
    check_options(o);
    return o;
}

void nystrom_sketch::check_loaded() const {
    const std::size_t d = options_.dim, s = width(), w = s + options_.probes;
    auto bad = [](const char* what) { throw std::length_error(std::string(what) + " has the wrong shape"); };
    if (mean_.shape(0) != d) bad("mean");
    if (y_.shape(0) != d || y_.shape(1) != w) bad("Y");
    if (pass_ > 0 && (q_.shape(0) != d || q_.shape(1) != s)) bad("Q");
    if (!(trace_ >= 0.0) || !std::isfinite(trace_)) throw std::length_error("trace is negative or not finite");
}

spectrum nystrom_spectrum(const nystrom_sketch& sk, const nystrom_spectrum_options& options) {
    if (sk.n() == 0)
        throw std::logic_error("nystrom_spectrum: pass " + std::to_string(sk.pass()) + " has seen no data");
    const std::size_t d = sk.dim(), s = sk.width(), t = sk.options().probes;
    const std::size_t want = options.rank == 0 ? sk.options().rank : options.rank;
    if (want > s)
        throw std::invalid_argument("nystrom_spectrum: rank " + std::to_string(want) + " exceeds the sketch width " +
                                    std::to_string(s));
    const matrix_t y = sk.range();
    reconstruction r = reconstruct(columns(y, 0, s), columns(sk.test_matrix(), 0, s));
    spectrum out;
    out.method = route::nystrom;
    out.center = sk.options().center;
    out.n = sk.n();
    out.dim = d;
    out.total = sk.trace();
    out.status = r.status;
    const std::size_t k = r.status == solver_status::converged ? want : 0;
    out.eigenvalues = xt::zeros<double>({k});
    out.basis = xt::zeros<double>({d, k});
    for (std::size_t j = 0; j < k; ++j) out.eigenvalues(j) = r.lambda(j);
    for (std::size_t i = 0; i < d; ++i)
        for (std::size_t j = 0; j < k; ++j) out.basis(i, j) = r.u(i, j);
    fix_signs(out.basis);
    out.explained = explained_fractions(out.eigenvalues, out.total);
    if (t > 0 && r.status == solver_status::converged) {
        // Residual of the probes: C G − U_k Λ_k (U_kᵀ G).
        const matrix_t g = columns(sk.test_matrix(), s, t);
        matrix_t res = columns(y, s, t);
        matrix_t ug = xt::zeros<double>({k, t});
        blas::gemm_tn(k, t, d, 1.0, out.basis.data(), g.data(), 0.0, ug.data());
        for (std::size_t j = 0; j < k; ++j)
            for (std::size_t c = 0; c < t; ++c) ug(j, c) *= out.eigenvalues(j);
        blas::gemm_nn(d, t, k, -1.0, out.basis.data(), ug.data(), 1.0, res.data());
        double ss = 0.0;
        for (double v : res) ss += v * v;
        out.error_estimate = std::sqrt(ss / static_cast<double>(t));
    }
    return out;
}

}  // namespace recalign
