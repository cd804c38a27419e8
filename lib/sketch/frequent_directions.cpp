#include "recalign/sketch/frequent_directions.hpp"
#include "recalign/sketch/frequent_directions_ell.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "recalign/core/blas.hpp"
#include "recalign/core/checked.hpp"
#include "recalign/core/errors.hpp"
#include "recalign/core/hash.hpp"
#include "recalign/spectral/eigen.hpp"

#include "frequent_directions_shrink.hpp"
#include "tall_svd.hpp"

namespace recalign {

std::size_t frequent_directions_default_ell(std::size_t rank, std::size_t dim) { return std::min(3 * rank, dim); }
std::size_t frequent_directions_legacy_ell(std::size_t rank, std::size_t dim) { return std::min(2 * rank, dim); }

namespace {
// Doubles of the batch converted at once by update(): 512 KiB, a few rows at high D.
constexpr std::size_t fd_chunk_values = std::size_t{1} << 16;
// Columns a shrink rotates at a time in place (fd_detail::rotate_rows_in_place): its scratch is
// ℓ x 2,048 instead of a second ℓ x D array (0.36 GB at D = 150,528 and ℓ = 300).
constexpr std::size_t fd_rotate_block = 2048;
// Columns the single-precision shrink converts at a time (its Gram matrix, then its rotation,
// the last block first: for D <= 8,192 the rows are converted once, as a whole float copy of the
// buffer did; above, a block is converted twice). 2ℓ x 8,192 floats: 20 MB at ℓ = 300, where the
// float copy was 0.36 GB at D = 150,528.
constexpr std::size_t fd_float_block = 8192;

void check_options(const frequent_directions_options& o) {
    if (o.dim == 0) throw std::invalid_argument("frequent_directions: dimension must be at least 1");
    if (o.ell == 0) throw std::invalid_argument("frequent_directions: ell (sketch rows) must be at least 1");
    blas::to_blas_int(o.dim, "dimension");
    if (o.ell > static_cast<std::size_t>(INT32_MAX) / 2)
        throw std::invalid_argument("frequent_directions: ell = " + std::to_string(o.ell) +
                                    " makes a 2ell-row buffer beyond the BLAS index limit");
    if (o.center != centering::centered && o.center != centering::uncentered)
        throw std::invalid_argument("frequent_directions: unknown centering");
    // The 2ell x D buffer (and the ell x D shrink target, the 2ell x 2ell Gram matrix) are
    // sized from these products: every later offset into them is below this bound.
    checked_elements<double>({2 * o.ell, o.dim}, "frequent_directions: 2ell x D buffer");
}
}  // namespace

frequent_directions::frequent_directions(const frequent_directions_options& options) : options_(options) {
    check_options(options_);
    mean_ = xt::zeros<double>({options_.dim});
}

std::uint64_t frequent_directions::config_hash() const {
    return fnv1a()
        .add(std::string_view("frequent_directions"))
        .add(static_cast<std::uint64_t>(options_.dim))
        .add(static_cast<std::uint64_t>(options_.ell))
        .add(static_cast<std::uint64_t>(options_.center))
        .value();
}

double frequent_directions::trace() const {
    return trace_in(options_.center, trace_, n_, mean_);
}

matrix_t frequent_directions::sketch(std::size_t extra_rows) const {
    matrix_t b = xt::zeros<double>({rows_ + extra_rows, options_.dim});
    std::copy(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(rows_ * options_.dim), b.data());
    return b;
}

void frequent_directions::reserve_buffer() {
    const std::size_t cap = 2 * options_.ell, d = options_.dim;
    if (buffer_.size() < cap * d) buffer_.resize(cap * d);
    if (options_.float32_kernels) {
        bf_.resize(cap * std::min(d, fd_float_block));  // a block of the buffer's columns, as floats
        gf_.resize(cap * cap);
        zf_.resize(cap * cap);
        ef_.resize(cap);
        tf_.resize(options_.ell * cap);
        sf_.resize(options_.ell * std::min(d, fd_float_block));
    } else {
        gram_.resize(cap * cap);
        z_.resize(cap * cap);
        eig_.resize(cap);
        transform_.resize(options_.ell * cap);
        shrunk_.resize(options_.ell * std::min(d, fd_rotate_block));
    }
}

void frequent_directions::append_rows(const double* src, std::size_t count) {
    const std::size_t cap = 2 * options_.ell, d = options_.dim;
    while (count > 0) {
        const std::size_t take = std::min(count, cap - rows_);
        std::memcpy(buffer_.data() + rows_ * d, src, take * d * sizeof(double));
        rows_ += take;
        src += take * d;
        count -= take;
        if (rows_ == cap) shrink();
    }
}

// One FD shrink of the full 2ℓ-row buffer through the eigendecomposition of its Gram
// matrix B Bᵀ = V Λ Vᵀ: the new rows are diag(√((λ_i − δ)/λ_i)) V_ℓᵀ B for the ℓ largest
// λ_i, δ = λ_{ℓ+1}; only those ℓ eigenvectors are formed (blas::syevd_top_rows). The
// rows kept by the previous shrink (the first diag_rows_) are mutually orthogonal, so their
// block of B Bᵀ is the diagonal of their squared norms (fd_detail::gram_of_rows). Then
// BᵀB − B'ᵀB' = Bᵀ V diag(min(δ/λ_i, 1)) Vᵀ B is PSD for any orthonormal V, with norm ≤ δ
// plus the perturbation of B Bᵀ the eigensolver saw (rounding, and the kept rows'
// off-diagonal products taken as 0: both O(ε λ_1), ε of the precision used), which is what Δ
// accumulates.
template <class T>
std::pair<std::size_t, double> frequent_directions::shrink_in(std::vector<T>& gram, std::vector<T>& z,
                                                             std::vector<T>& eig, std::vector<T>& transform,
                                                             std::vector<T>& shrunk) {
    const std::size_t m = rows_, d = options_.dim, ell = options_.ell;
    // Single precision reads and writes the double rows a block of columns at a time (bf_).
    if constexpr (std::is_same_v<T, float>)
        fd_detail::gram_of_rows(m, std::min(diag_rows_, m), d, buffer_.data(), norms_.data(), gram.data(),
                                fd_float_block, bf_.data());
    else
        fd_detail::gram_of_rows(m, std::min(diag_rows_, m), d, buffer_.data(), norms_.data(), gram.data());
    // xSYEVD's algorithm (divide and conquer) back-transforming only the ℓ vectors kept. Measured
    // slower on these Gram matrices: dsyevr (MRRR) for the same subset (2x), and xSTEMR for the
    // top ℓ + 1 pairs alone after the same xSYTRD (3-6x xSTEDC's time on all of them; docs/benchmarks-log.md fd10).
    const std::size_t top = std::min(ell, m);
    const int info = blas::syevd_top_rows(m, top, gram.data(), eig.data(), z.data());
    if (info != 0)
        throw numerical_error("frequent_directions: the eigensolver did not converge on the " + std::to_string(m) +
                              " x " + std::to_string(m) + " Gram matrix (info " + std::to_string(info) + ")");
    // eig ascending; row i of z (i >= m − top) is the eigenvector of eig[i].
    const double delta = m > ell ? std::max(static_cast<double>(eig[m - 1 - ell]), 0.0) : 0.0;
    std::size_t kept = 0;
    for (std::size_t j = 0; j < ell && j < m; ++j) {
        const std::size_t src = m - 1 - j;
        const double lam = eig[src];
        if (!(lam > delta)) break;
        const T c = static_cast<T>(std::sqrt((lam - delta) / lam));
        for (std::size_t i = 0; i < m; ++i) transform[j * m + i] = c * z[src * m + i];
        ++kept;
    }
    if constexpr (std::is_same_v<T, float>)
        fd_detail::rotate_rows_in_place(kept, m, d, transform.data(), buffer_.data(), fd_float_block, bf_.data(),
                                        shrunk.data(), m > std::min(diag_rows_, m));  // the Gram's last block
    else
        fd_detail::rotate_rows_in_place(kept, m, d, transform.data(), buffer_.data(), fd_rotate_block, shrunk.data());
    return {kept, delta};
}

void frequent_directions::shrink() {
    const std::size_t d = options_.dim;
    // The kept rows' squared norms, from the stored (double) rows: a resumed state gets the same.
    const std::size_t p = std::min(diag_rows_, rows_);
    norms_.resize(p);
    for (std::size_t i = 0; i < p; ++i) {
        const double* row = buffer_.data() + i * d;
        double s = 0.0;
        for (std::size_t c = 0; c < d; ++c) s += row[c] * row[c];
        norms_[i] = s;
    }
    std::pair<std::size_t, double> r;
    if (options_.float32_kernels)
        r = shrink_in(gf_, zf_, ef_, tf_, sf_);
    else
        r = shrink_in(gram_, z_, eig_, transform_, shrunk_);  // in the buffer itself
    rows_ = r.first;
    diag_rows_ = r.first;
    delta_ += r.second;
    ++shrinks_;
}

// The batch is converted a chunk of rows at a time (fd_chunk_values doubles), twice: once to
// check it and form its column means, once to center and append it. A rows x D double copy of
// it would be 1.2 GB at D = 150,528 and the default 1,000 rows, more than the sketch itself.
// The additions run in the order of one whole-batch conversion (rows in order, each row's
// columns in order), so the results are the same bits.
void frequent_directions::update(const batch_view& x, std::uint64_t first_row) {
    const std::size_t d = options_.dim, rows = x.rows;
    // --- validation and the batch's means: the state does not change here ---
    blas::to_blas_int(rows, "batch rows");
    checked_product({rows, d}, "frequent_directions: batch rows x D");
    batch_view shape_only = x;
    shape_only.rows = 0;
    to_double_checked(shape_only, d, nullptr, first_row);
    if (rows == 0) return;
    const std::size_t chunk = std::min(rows, std::max<std::size_t>(1, fd_chunk_values / d));
    xb_.resize(chunk * d);
    chan_.resize(2 * d);
    double* mean_b = chan_.data();
    double* row = chan_.data() + d;
    std::fill(mean_b, mean_b + d, 0.0);
    for (std::size_t r0 = 0; r0 < rows; r0 += chunk) {
        const std::size_t k = std::min(chunk, rows - r0);
        to_double_checked(batch_rows(x, r0, k), d, xb_.data(), first_row + r0);
        for (std::size_t r = 0; r < k; ++r)
            for (std::size_t c = 0; c < d; ++c) mean_b[c] += xb_[r * d + c];
    }
    const double inv = 1.0 / static_cast<double>(rows);
    for (std::size_t c = 0; c < d; ++c) mean_b[c] *= inv;
    reserve_buffer();
    // Chan's rule (MATH.md §1, §6): the cross term (n_a n_b / n) δδᵀ is the row √(n_a n_b / n) δᵀ.
    const std::uint64_t na = n_, n = na + rows;
    const double w = static_cast<double>(na) * static_cast<double>(rows) / static_cast<double>(n);
    const double sw = std::sqrt(w);
    double d2 = 0.0;
    for (std::size_t c = 0; c < d; ++c) {
        const double delta = mean_b[c] - mean_(c);
        row[c] = sw * delta;
        d2 += delta * delta;
    }

    // --- the state changes from here on (the conversions below were checked above) ---
    double trace_b = 0.0;
    for (std::size_t r0 = 0; r0 < rows; r0 += chunk) {
        const std::size_t k = std::min(chunk, rows - r0);
        to_double_checked(batch_rows(x, r0, k), d, xb_.data(), first_row + r0);
        for (std::size_t r = 0; r < k; ++r)
            for (std::size_t c = 0; c < d; ++c) {
                const double v = xb_[r * d + c] - mean_b[c];
                xb_[r * d + c] = v;
                trace_b += v * v;
            }
        append_rows(xb_.data(), k);
    }
    if (na > 0) append_rows(row, 1);
    const double f = static_cast<double>(rows) / static_cast<double>(n);
    for (std::size_t c = 0; c < d; ++c) mean_(c) += (mean_b[c] - mean_(c)) * f;
    trace_ += trace_b + w * d2;
    n_ = n;
}

void frequent_directions::merge(const frequent_directions& other) {
    if (other.options_.dim != options_.dim)
        throw std::invalid_argument("cannot merge frequent_directions sketches of dimension " +
                                    std::to_string(options_.dim) + " and " + std::to_string(other.options_.dim));
    if (other.options_.ell != options_.ell)
        throw std::invalid_argument("cannot merge frequent_directions sketches of ell " + std::to_string(options_.ell) +
                                    " and " + std::to_string(other.options_.ell));
    if (other.options_.center != options_.center)
        throw std::invalid_argument(std::string("cannot merge a ") + centering_name(options_.center) +
                                    " frequent_directions sketch with a " + centering_name(other.options_.center) +
                                    " one");
    if (other.n_ == 0) return;
    const std::size_t d = options_.dim;
    // Copy what we read from `other` first: it may be *this.
    std::vector<double> incoming(other.buffer_.begin(),
                                 other.buffer_.begin() + static_cast<std::ptrdiff_t>(other.rows_ * d));
    const std::size_t in_rows = other.rows_;
    const std::uint64_t nb = other.n_, na = n_, n = na + nb;
    const double w = static_cast<double>(na) * static_cast<double>(nb) / static_cast<double>(n);
    const double sw = std::sqrt(w);
    std::vector<double> row(d), mean_b(other.mean_.begin(), other.mean_.end());
    double d2 = 0.0;
    for (std::size_t c = 0; c < d; ++c) {
        const double delta = mean_b[c] - mean_(c);
        row[c] = sw * delta;
        d2 += delta * delta;
    }
    const double other_trace = other.trace_, other_delta = other.delta_;
    const std::uint64_t other_shrinks = other.shrinks_;
    reserve_buffer();
    // Into an empty buffer the incoming rows come first: the other's kept rows stay at the head.
    if (rows_ == 0) diag_rows_ = std::min(other.diag_rows_, in_rows);

    append_rows(incoming.data(), in_rows);
    if (na > 0) append_rows(row.data(), 1);
    const double f = static_cast<double>(nb) / static_cast<double>(n);
    for (std::size_t c = 0; c < d; ++c) mean_(c) += (mean_b[c] - mean_(c)) * f;
    trace_ += other_trace + w * d2;
    delta_ += other_delta;
    shrinks_ += other_shrinks;
    n_ = n;
}

frequent_directions_options frequent_directions::validated_options(std::uint64_t dim, std::uint64_t ell,
                                                                   std::uint8_t center,
                                                                   const checkpoint::budget& b) {
    if (dim == 0 || dim > checkpoint::max_dim) throw std::length_error("dimension " + std::to_string(dim) + " out of range");
    if (ell == 0 || ell > checkpoint::max_dim / 2) throw std::length_error("ell " + std::to_string(ell) + " out of range");
    if (center != 1 && center != 2) throw std::length_error("unknown centering " + std::to_string(center));
    // The constructor allocates the mean (D doubles): the payload must still hold it.
    if (dim > b.left / 8) throw std::length_error("a " + std::to_string(dim) + "-dimensional state cannot fit in the payload");
    frequent_directions_options o;
    o.dim = static_cast<std::size_t>(dim);
    o.ell = static_cast<std::size_t>(ell);
    o.center = static_cast<centering>(center);
    check_options(o);
    return o;
}

void frequent_directions::check_loaded() const {
    if (mean_.dimension() != 1 || mean_.shape(0) != options_.dim) throw std::length_error("mean has the wrong shape");
    if (!(delta_ >= 0.0) || !std::isfinite(delta_)) throw std::length_error("shrinkage is negative or not finite");
    if (!(trace_ >= 0.0) || !std::isfinite(trace_)) throw std::length_error("trace is negative or not finite");
    if (n_ == 0 && rows_ != 0) throw std::length_error("an empty sketch holds rows");
}

namespace {
// The sketch's rows, plus √n μᵀ after them for the uncentered route: a copy.
matrix_t copy_rows(const frequent_directions& fd, bool mean_row) {
    matrix_t b = fd.sketch(mean_row ? 1 : 0);
    if (mean_row) {
        const double sn = std::sqrt(static_cast<double>(fd.n()));
        const std::size_t last = b.shape(0) - 1;
        for (std::size_t c = 0; c < fd.dim(); ++c) b(last, c) = sn * fd.mean()(c);
    }
    return b;
}

struct eigenpairs {
    vector_t values;  // descending
    matrix_t vectors; // d x r
};

// The top eigenpairs of BᵀB for B = [the sketch's rows; √n μᵀ] (m <= D rows), read in place:
// the m x m Gram matrix B Bᵀ = U Λ Uᵀ gives the directions (its top r with λ > rel_tol λ₁),
// then the thin SVD of E = Bᵀ U_r (D x r, Cholesky QR twice and an r x r SVD) their Ritz
// values and orthonormal vectors: the singular values of U_rᵀ B, whose error is second order
// in U_r's (rounding of the m x m eigenproblem, ε λ₁ / gap). Held beside the sketch: two D x r
// arrays, no copy of B (the thin SVD of a copy held the rows twice: 722 MB more at
// D = 150,528 and ℓ = 300). Nothing when a Cholesky factorisation fails (E numerically rank
// deficient: rel_tol at rounding level), for the caller's SVD.
std::optional<eigenpairs> gram_ritz(const frequent_directions& fd, bool mean_row, std::size_t want, double rel_tol) {
    const std::size_t d = fd.dim(), m0 = fd.rows(), m = m0 + (mean_row ? 1 : 0);
    const double* b = fd.sketch_rows();
    const double sn = mean_row ? std::sqrt(static_cast<double>(fd.n())) : 0.0;
    matrix_t g = xt::zeros<double>({m, m});
    if (m0) {
        matrix_t g0 = xt::zeros<double>({m0, m0});
        blas::syrk_nt(m0, d, 1.0, b, 0.0, g0.data());
        for (std::size_t i = 0; i < m0; ++i)
            for (std::size_t j = i; j < m0; ++j) g(i, j) = g0(i, j);
    }
    if (mean_row) {
        const vector_t& mu = fd.mean();
        vector_t bmu = xt::zeros<double>({std::max<std::size_t>(m0, 1)});
        if (m0) blas::gemm_nn(m0, 1, d, 1.0, b, mu.data(), 0.0, bmu.data());
        double mm = 0.0;
        for (std::size_t c = 0; c < d; ++c) mm += mu(c) * mu(c);
        for (std::size_t i = 0; i < m0; ++i) g(i, m0) = sn * bmu(i);
        g(m0, m0) = sn * sn * mm;
    }
    blas::symmetrize_from_upper(m, g.data());
    const eigen_result e = sym_eigen_consuming(std::move(g), m);
    if (e.info != 0) return std::nullopt;
    const double cut = rel_tol * std::max(e.values(0), 0.0);
    std::size_t r = 0;
    while (r < m && r < want && e.values(r) > cut && e.values(r) > 0.0) ++r;
    eigenpairs out;
    if (r == 0) {
        out.values = xt::zeros<double>({std::size_t(0)});
        out.vectors = xt::zeros<double>({d, std::size_t(0)});
        return out;
    }
    matrix_t ur = xt::view(e.vectors, xt::all(), xt::range(0, r));  // m x r
    matrix_t em = xt::zeros<double>({d, r});                          // E = Bᵀ U_r
    if (m0) blas::gemm_tn(d, r, m0, 1.0, b, ur.data(), 0.0, em.data());
    if (mean_row) blas::ger(d, r, sn, fd.mean().data(), ur.data() + m0 * r, em.data());  // + √n μ U_r[m0, :]
    vector_t sv = xt::zeros<double>({r});
    if (!detail::svd_cholqr2(em, out.vectors, sv)) return std::nullopt;
    out.values = sv * sv;
    return out;
}
}  // namespace

spectrum frequent_directions_spectrum(const frequent_directions& fd, const frequent_directions_spectrum_options& options) {
    if (!(options.rel_tol >= 0.0)) throw std::invalid_argument("frequent_directions_spectrum: rel_tol must be >= 0");
    const std::size_t d = fd.dim();
    const bool uncentered = fd.options().center == centering::uncentered;
    spectrum s;
    s.method = route::frequent_directions;
    s.center = fd.options().center;
    s.n = fd.n();
    s.dim = d;
    s.total = fd.trace();
    s.error_bound = options.robust_shift ? 0.5 * fd.shrinkage() : fd.shrinkage();
    // Rows of the matrix whose Gram approximates C: the sketch, plus √n μᵀ for S = M + n μμᵀ.
    const bool mean_row = uncentered && fd.n() > 0;
    const std::size_t want = options.rank == 0 ? fd.options().ell : options.rank;
    const std::size_t m0 = fd.rows(), m = m0 + (mean_row ? 1 : 0);
    vector_t values;
    matrix_t vectors;  // the eigenvectors: d x r columns, or (transposed) r x d rows
    bool transposed = false;
    if (m == 0) {
        values = xt::zeros<double>({std::size_t(0)});
        vectors = xt::zeros<double>({d, std::size_t(0)});
    } else if (m <= d) {
        std::optional<eigenpairs> ritz = gram_ritz(fd, mean_row, want, options.rel_tol);
        if (ritz) {
            values = std::move(ritz->values);
            vectors = std::move(ritz->vectors);
        } else {
            // A Cholesky factorisation in the Ritz step failed (directions at rounding level:
            // rel_tol = 0): a thin SVD of a copy of the rows. Bᵀ column-major is B's
            // row-major array, so LAPACK works in the copy and writes the vectors over it (as
            // its rows), forming them a block of rows at a time.
            matrix_t b = copy_rows(fd, mean_row);
            vector_t sv = xt::zeros<double>({m});
            matrix_t vt = xt::zeros<double>({m, m});
            s.status = solver_status_of(blas::gesdd_overwrite_colmajor(d, m, b.data(), sv.data(), vt.data()));
            values = sv * sv;
            vectors = std::move(b);  // U, written over B: its rows are Bᵀ's left singular vectors
            transposed = true;
        }
    } else {
        matrix_t b = copy_rows(fd, mean_row);
        matrix_t g = xt::zeros<double>({d, d});
        blas::syrk_tn(d, m, 1.0, b.data(), 0.0, g.data());
        b = matrix_t();
        eigen_result e = sym_eigen(g);
        s.status = solver_status_of(e.info);
        values = std::move(e.values);
        vectors = std::move(e.vectors);
    }
    std::size_t r = 0;
    const double cut = values.size() > 0 ? options.rel_tol * std::max(values(0), 0.0) : 0.0;
    while (r < values.size() && r < want && values(r) > cut) ++r;
    if (s.status != solver_status::converged) r = 0;
    s.eigenvalues = xt::zeros<double>({r});
    // Robust Frequent Directions (Luo, Chen, Zhang, Li, Zhang 2017): C ≈ BᵀB + (Δ/2) I, and
    // since 0 ⪯ C − BᵀB ⪯ Δ I, |λ_i(C) − (λ_i(BᵀB) + Δ/2)| ≤ Δ/2 for every i (Weyl).
    const double shift = options.robust_shift ? 0.5 * fd.shrinkage() : 0.0;
    for (std::size_t j = 0; j < r; ++j) s.eigenvalues(j) = values(j) + shift;
    if (!transposed && vectors.shape(1) == r) {
        s.basis = std::move(vectors);  // the Ritz vectors as they are: no second D x r array
    } else {
        s.basis = xt::zeros<double>({d, r});
        for (std::size_t i = 0; i < d; ++i)
            for (std::size_t j = 0; j < r; ++j) s.basis(i, j) = transposed ? vectors(j, i) : vectors(i, j);
    }
    vectors = matrix_t();
    fix_signs(s.basis);
    s.explained = explained_fractions(s.eigenvalues, s.total);
    return s;
}

}  // namespace recalign
