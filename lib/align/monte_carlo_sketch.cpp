#include "recalign/align/monte_carlo_sketch.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>

#include "recalign/core/blas.hpp"
#include "recalign/core/checked.hpp"
#include "recalign/core/errors.hpp"
#include "recalign/core/hash.hpp"
#include "recalign/core/rng.hpp"
#include "recalign/spectral/eigen.hpp"

namespace recalign {

namespace {
// a += b elementwise, in place (xtensor's `a += b` would build a + b in a temporary first).
void add_to(matrix_t& a, const matrix_t& b) {
    double* x = a.data();
    const double* y = b.data();
    for (std::size_t i = 0, n = a.size(); i < n; ++i) x[i] += y[i];
}
}  // namespace

matrix_t gaussian_test_matrix(std::size_t dim, std::size_t columns, std::uint64_t seed) {
    checked_elements<double>({dim, columns}, "gaussian_test_matrix: D x l");
    matrix_t t = matrix_t::from_shape({dim, columns});
    // Stream (seed, 2^64 − 1 − j, 0) per column: the corruptions use (seed, row, draw) with
    // rows far below 2^63, so Ω never shares numbers with the noise it sketches.
    for (std::size_t j = 0; j < columns; ++j) {
        const rng::stream st(seed, std::numeric_limits<std::uint64_t>::max() - j, 0);
        for (std::size_t i = 0; i < dim; ++i) t(i, j) = st.normal(i);
    }
    return t;
}

monte_carlo_sketch::monte_carlo_sketch(monte_carlo_sketch_options options, corrupt_fn corrupt)
    : options_(std::move(options)), corrupt_(std::move(corrupt)) {
    const std::size_t d = dim(), l = columns();
    if (d == 0 || l == 0) throw std::invalid_argument("monte_carlo_sketch: the test matrix must be D x l with D, l >= 1");
    blas::to_blas_int(d, "dimension");
    blas::to_blas_int(l, "test matrix columns");
    if (options_.draws == 0) throw std::invalid_argument("monte_carlo_sketch: draws must be at least 1");
    for (double v : options_.test)
        if (!std::isfinite(v)) throw std::invalid_argument("monte_carlo_sketch: the test matrix holds a non-finite value");
    checked_elements<double>({3, d, l}, "monte_carlo_sketch: 3 x D x l state");
    const std::size_t none = 0;
    g_ = options_.ranges ? matrix_t(xt::zeros<double>({d, l})) : matrix_t(xt::zeros<double>({l, l}));
    bs_ = options_.ranges ? matrix_t(xt::zeros<double>({d, l})) : matrix_t(xt::zeros<double>({none, none}));
    bs_t_ = xt::zeros<double>({d, l});
}

std::uint64_t monte_carlo_sketch::config_hash() const {
    const matrix_t& t = options_.test;
    return fnv1a()
        .add(std::string_view("monte_carlo_sketch"))
        .add(static_cast<std::uint64_t>(t.shape(0)))
        .add(static_cast<std::uint64_t>(t.shape(1)))
        .add(static_cast<std::uint64_t>(options_.draws))
        .add(options_.seed)
        .add(std::string_view(options_.name))
        .add(std::string_view(options_.ranges ? "ranges" : "restricted"))
        .add(std::string_view(reinterpret_cast<const char*>(t.data()), t.size() * sizeof(double)))
        .value();
}

void monte_carlo_sketch::update(const batch_view& x) { update(x, n_); }

void monte_carlo_sketch::update(const batch_view& x, std::uint64_t first_row) { commit(prepare(x, first_row)); }

monte_carlo_batch monte_carlo_sketch::prepare(const batch_view& x, std::uint64_t first_row) const {
    if (!corrupt_)
        throw std::logic_error("monte_carlo_sketch: no corruption function (give it to load or set_corrupter)");
    const std::size_t d = dim(), l = columns(), rows = x.rows, S = options_.draws;
    blas::to_blas_int(rows, "batch rows");
    checked_elements<double>({rows, d}, "monte_carlo_sketch: batch rows x D");
    monte_carlo_batch b;
    b.batch = batches_;
    b.first_row = first_row;
    b.clean = matrix_t::from_shape({rows, d});
    to_double_checked(x, d, b.clean.data(), first_row);
    if (rows == 0) return b;
    const matrix_t& omega = options_.test;
    const matrix_t& clean = b.clean;
    b.projected = xt::zeros<double>({rows, l});
    b.g = xt::zeros<double>(g_.shape());
    if (options_.ranges) {
        b.tested = xt::zeros<double>({rows, l});
        blas::gemm_nn(rows, l, d, 1.0, clean.data(), omega.data(), 0.0, b.tested.data());
        b.corrupted = xt::zeros<double>({rows, d});
    }
    matrix_t out = matrix_t::from_shape({rows, d});
    matrix_t p = xt::zeros<double>({rows, l});  // x' Ω
    for (std::size_t s = 0; s < S; ++s) {
        std::fill(out.begin(), out.end(), 0.0);
        const noise_key key{options_.seed, batches_, s, first_row};  // the exact route's keys (monte_carlo_noise)
        corrupt_(clean, out, key);
        if (out.shape(0) != rows || out.shape(1) != d)
            throw input_error("monte_carlo_sketch '" + options_.name + "': the corruption changed the batch shape");
        for (std::size_t i = 0; i < out.size(); ++i)
            if (!std::isfinite(out.data()[i]))
                throw input_error("monte_carlo_sketch '" + options_.name + "': corrupted row " +
                                  std::to_string(first_row + i / d) + ", column " + std::to_string(i % d) +
                                  " is not finite (draw " + std::to_string(s) + ")");
        blas::gemm_nn(rows, l, d, 1.0, out.data(), omega.data(), 0.0, p.data());
        add_to(b.projected, p);
        if (options_.ranges) {
            blas::gemm_tn(d, l, rows, 1.0, out.data(), p.data(), 1.0, b.g.data());  // Σ x' x'ᵀ Ω
            add_to(b.corrupted, out);
        } else {
            blas::gemm_tn(l, l, rows, 1.0, p.data(), p.data(), 1.0, b.g.data());  // Σ Ωᵀ x' x'ᵀ Ω
        }
    }
    return b;
}

void monte_carlo_sketch::commit(const monte_carlo_batch& b) {
    const std::size_t d = dim(), l = columns(), rows = b.rows();
    if (b.batch != batches_ || b.clean.shape(1) != d ||
        (rows > 0 && (b.g.shape() != g_.shape() || b.projected.shape(1) != l || (b.tested.size() > 0) != options_.ranges)))
        throw std::logic_error("monte_carlo_sketch::commit: the batch was prepared by another state or at batch " +
                               std::to_string(b.batch) + ", not " + std::to_string(batches_));
    if (rows == 0) return;
    // --- in place from here on; nothing below can fail ---
    add_to(g_, b.g);
    blas::gemm_tn(d, l, rows, 1.0, b.clean.data(), b.projected.data(), 1.0, bs_t_.data());  // Σ x x'ᵀ Ω
    if (options_.ranges)
        blas::gemm_tn(d, l, rows, 1.0, b.corrupted.data(), b.tested.data(), 1.0, bs_.data());  // Σ x' xᵀ Ω
    n_ += rows;
    ++batches_;
}

void monte_carlo_sketch::merge(const monte_carlo_sketch& other) {
    const auto& a = options_;
    const auto& b = other.options_;
    if (a.test.shape() != b.test.shape() || a.draws != b.draws || a.seed != b.seed || a.name != b.name ||
        a.ranges != b.ranges ||
        !std::equal(a.test.begin(), a.test.end(), b.test.begin(),
                    [](double u, double v) { return std::memcmp(&u, &v, sizeof u) == 0; }))
        throw std::invalid_argument("cannot merge Monte-Carlo sketches '" + a.name + "' (D x l = " +
                                    std::to_string(dim()) + " x " + std::to_string(columns()) + ", draws " +
                                    std::to_string(a.draws) + ", seed " + std::to_string(a.seed) + ") and '" + b.name +
                                    "' (D x l = " + std::to_string(other.dim()) + " x " +
                                    std::to_string(other.columns()) + ", draws " + std::to_string(b.draws) + ", seed " +
                                    std::to_string(b.seed) + ")" +
                                    (a.test.shape() == b.test.shape() ? ": their test matrices differ" : ""));
    if (other.n_ == 0) return;
    if (&other == this) {
        g_ *= 2.0;
        bs_ *= 2.0;
        bs_t_ *= 2.0;
    } else {
        g_ += other.g_;
        bs_ += other.bs_;
        bs_t_ += other.bs_t_;
    }
    n_ += other.n_;
    batches_ += other.batches_;
}

monte_carlo_products monte_carlo_sketch::products() const {
    const double s = static_cast<double>(options_.draws);
    monte_carlo_products p;
    p.n = n_;
    p.test = options_.test;
    p.bs_t = bs_t_ / s;
    const std::size_t l = columns();
    if (options_.ranges) {
        p.g = g_ / s;
        p.bs = bs_ / s;
        p.gq = xt::zeros<double>({l, l});
        blas::gemm_tn(l, l, dim(), 1.0, options_.test.data(), p.g.data(), 0.0, p.gq.data());
    } else {
        p.gq = g_ / s;
    }
    for (std::size_t i = 0; i < l; ++i)
        for (std::size_t j = i + 1; j < l; ++j) p.gq(i, j) = p.gq(j, i) = 0.5 * (p.gq(i, j) + p.gq(j, i));
    return p;
}

monte_carlo_sketch monte_carlo_sketch::load(std::istream& is, corrupt_fn corrupt) {
    monte_carlo_sketch m = checkpoint::load_state<monte_carlo_sketch>(is);
    m.corrupt_ = std::move(corrupt);
    return m;
}

void monte_carlo_sketch::check_loaded() const {
    const std::size_t d = dim(), l = columns();
    const bool ok = bs_t_.shape(0) == d && bs_t_.shape(1) == l &&
                    (options_.ranges ? g_.shape(0) == d && g_.shape(1) == l && bs_.shape(0) == d && bs_.shape(1) == l
                                     : g_.shape(0) == l && g_.shape(1) == l && bs_.size() == 0);
    if (!ok) throw std::length_error("Monte-Carlo sketch sums have the wrong shape");
}

// --- the Ritz problem ---------------------------------------------------------------------

matrix_t monte_carlo_ritz_basis(const matrix_t& q, const monte_carlo_products& sk) {
    const std::size_t d = q.shape(0), l = sk.test.shape(1);
    if (sk.test.shape(0) != d)
        throw std::invalid_argument("monte_carlo_ritz_basis: the sketch has D = " + std::to_string(sk.test.shape(0)) +
                                    ", the basis " + std::to_string(d));
    if (sk.g.shape(0) != d || sk.bs.shape(0) != d)
        throw std::invalid_argument("monte_carlo_ritz_basis: the sketch holds no ranges (G Ω, Bs Ω)");
    const std::size_t e = checked_mul(l, std::size_t{3}, "monte_carlo_ritz_basis: 3 l");
    matrix_t extra = matrix_t::from_shape({d, e});
    for (std::size_t i = 0; i < d; ++i)
        for (std::size_t j = 0; j < l; ++j) {
            extra(i, j) = sk.g(i, j);
            extra(i, l + j) = sk.bs(i, j);
            extra(i, 2 * l + j) = sk.bs_t(i, j);
        }
    return orthonormal_extension(q, extra);
}

ritz_denoising_result ritz_monte_carlo_denoising(const restricted_statistics& s, const monte_carlo_products& p,
                                                 double rel_tol) {
    const std::size_t d = s.dim(), k = s.k();
    if (p.test.shape(0) != d || p.test.shape(1) != k || !std::equal(s.basis.begin(), s.basis.end(), p.test.begin()))
        throw std::invalid_argument("ritz_monte_carlo_denoising: the Monte-Carlo products are not on the "
                                    "verification pass's basis");
    if (p.n != s.n)
        throw std::invalid_argument("ritz_monte_carlo_denoising: the Monte-Carlo products cover " + std::to_string(p.n) +
                                    " samples, the verification pass " + std::to_string(s.n));
    if (s.center != centering::uncentered)
        throw std::invalid_argument("ritz_monte_carlo_denoising: Monte-Carlo expectations are uncentered sums; the "
                                    "verification pass must be too");
    // Qᵀ Bs Bsᵀ Q = (Bsᵀ Q)ᵀ (Bsᵀ Q) and Qᵀ G Q, both exact for the draws made.
    matrix_t a = xt::zeros<double>({k, k});
    blas::gemm_tn(k, k, d, 1.0, p.bs_t.data(), p.bs_t.data(), 0.0, a.data());
    for (std::size_t i = 0; i < k; ++i)
        for (std::size_t j = i + 1; j < k; ++j) a(i, j) = a(j, i) = 0.5 * (a(i, j) + a(j, i));
    return ritz_generalized(s, a, p.gq, rel_tol);
}

}  // namespace recalign
