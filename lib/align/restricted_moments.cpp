#include "recalign/align/restricted_moments.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

#include "recalign/core/blas.hpp"
#include "recalign/io/spill.hpp"
#include "recalign/core/checked.hpp"
#include "recalign/core/errors.hpp"
#include "recalign/core/hash.hpp"
#include "batch_halves.hpp"
#include "congruence.hpp"

namespace recalign {

namespace {
// An accumulator finished by moving its statistics out (finish() &&) has no columns left.
void require_unspent(const matrix_t& basis, const char* who) {
    if (basis.size() == 0)
        throw std::logic_error(std::string("restricted_moments::") + who +
                               ": the accumulator is spent (finished by moving its statistics out)");
}

// Columns of a batch converted at a time (as in nystrom_sketch): cache-sized scratch.
constexpr std::size_t column_block = 1024;

// The batch's columns x − shift a block at a time, each converted into a scratch and handed to
// product(c0, cb, xs, part, first): block [c0, c0 + cb) in `xs` (rows x cb), of half `part`,
// `first` for the first block that half hands over. With `halves`, each thread takes its own
// half of the blocks (detail::block_half) into its own scratch (scratch[part]), running its
// products with OpenBLAS on one thread (as nystrom_sketch's update, lib/sketch/nystrom_halves.cpp);
// otherwise one block after another (part 0), each converted on both threads and multiplied on
// BLAS's own.
template <class Product>
void column_blocks(const batch_view& x, std::size_t d, const double* shift, detail::second_thread& two, bool halves,
                   std::vector<double>* scratch[2], Product&& product) {
    if (!halves) {
        for (std::size_t c0 = 0; c0 < d; c0 += column_block) {
            const std::size_t cb = std::min(column_block, d - c0);
            detail::gather_shifted(two, x, shift, nullptr, c0, cb, scratch[0]->data());
            product(c0, cb, scratch[0]->data(), 0, c0 == 0);
        }
        return;
    }
    const detail::one_blas_thread one;
    detail::over_block_halves(two, d, column_block, [&](std::size_t b0, std::size_t b1, int part) {
        double* xs = scratch[part]->data();
        for (std::size_t b = b0; b < b1; ++b) {
            const std::size_t c0 = b * column_block, cb = std::min(column_block, d - c0);
            gather_shifted(x, shift, nullptr, c0, cb, xs);
            product(c0, cb, xs, part, b == b0);
        }
    });
}

// μz = Vᵀ μ (K).
vector_t project_mean(const matrix_t& v, const vector_t& mean) {
    const std::size_t d = v.shape(0), k = v.shape(1);
    vector_t out = xt::zeros<double>({k});
    blas::gemm_tn(k, 1, d, 1.0, v.data(), mean.data(), 0.0, out.data());
    return out;
}
}  // namespace

restricted_moments::restricted_moments(restricted_moments_options options) : options_(std::move(options)) {
    const matrix_t& v = options_.basis;
    const std::size_t d = v.shape(0), k = v.shape(1);
    if (d == 0 || k == 0) throw std::invalid_argument("restricted_moments: the basis must be D x K with D, K >= 1");
    blas::to_blas_int(d, "dimension");
    blas::to_blas_int(k, "basis columns");
    for (double x : v)
        if (!std::isfinite(x)) throw std::invalid_argument("restricted_moments: the basis holds a non-finite value");
    checked_elements<double>({d, k}, "restricted_moments: D x K state");
    mean_ = xt::zeros<double>({d});
    mzz_ = xt::zeros<double>({k, k});
    mxz_ = xt::zeros<double>({d, k});
    if (options_.classes) labels_.emplace(class_moments_options{k, options_.classes});
}

std::uint64_t restricted_moments::config_hash() const {
    const matrix_t& v = options_.basis;
    return fnv1a()
        .add(std::string_view("restricted_moments"))
        .add(static_cast<std::uint64_t>(v.shape(0)))
        .add(static_cast<std::uint64_t>(v.shape(1)))
        .add(static_cast<std::uint64_t>(options_.classes))
        .add(std::string_view(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(double)))
        .value();
}

void restricted_moments::update(const batch_view& x, std::uint64_t first_row) {
    update(x, target_view::none(), first_row);
}

void restricted_moments::update(const batch_view& x, const target_view& labels, std::uint64_t first_row) {
    require_unspent(options_.basis, "update");
    const std::size_t d = dim(), k = this->k(), rows = x.rows;
    if (labels_ && labels.form == target_view::kind::none)
        throw input_error("this accumulator collects class ids: every batch needs them");
    if (!labels_ && labels.form != target_view::kind::none)
        throw input_error("labels given to an accumulator configured without classes");
    blas::to_blas_int(rows, "batch rows");
    // Validation (strong guarantee), a few rows at a time: x − shift with the running mean as
    // the shift (or the batch's first row), as moment_accumulator::update does.
    const std::vector<double> shift = scatter_shift(x, d, d, mean_.data(), n_ > 0, first_row);
    // The check and the conversions between the GEMMs on two threads (batch_halves.hpp), where a
    // block is big enough to pay for the hand-over and the batch for starting the thread (as
    // nystrom_sketch).
    const bool shared = rows * std::min(d, column_block) >= (std::size_t{1} << 16) && rows * d >= (std::size_t{1} << 20);
    detail::second_thread two(shared);
    // Two column blocks or more: the products split by blocks, each thread converting its own
    // and running their GEMMs with OpenBLAS on one thread (as nystrom_sketch's update,
    // lib/sketch/nystrom_halves.cpp); z̃ is half 0's part plus half 1's with or without the
    // second thread, so the bits depend on the batch's shape alone.
    const bool halves = shared && d > column_block;
    std::vector<double> sum(d, 0.0);
    detail::check_shifted_sums(two, x, d, shift.data(), sum.data(), xs_,
                               std::max<std::size_t>(1, (std::size_t(1) << 20) / d), first_row);
    if (rows == 0) return;
    zs_.resize(checked_mul(rows, k, "restricted_moments: batch rows x K"));
    // z̃ = (x − shift) V over blocks of columns of the batch, each converted on its own (no
    // rows x D copy of the batch at high D).
    xs_.resize(checked_mul(rows, std::min(d, column_block), "restricted_moments: batch rows x column block"));
    if (halves) {
        xs1_.resize(xs_.size());
        zs1_.resize(zs_.size());
    }
    std::vector<double>* scratch[2] = {&xs_, &xs1_};
    column_blocks(x, d, shift.data(), two, halves, scratch,
                  [&](std::size_t c0, std::size_t cb, const double* xs, int part, bool first) {
                      blas::gemm_nn(rows, k, cb, 1.0, xs, options_.basis.data() + c0 * k, first ? 0.0 : 1.0,
                                    part ? zs1_.data() : zs_.data());
                  });
    if (halves)
        for (std::size_t i = 0; i < rows * k; ++i) zs_[i] += zs1_[i];
    std::vector<double> mz(k, 0.0);
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t j = 0; j < k; ++j) mz[j] += zs_[r * k + j];
    if (labels_) {
        // The class means are of z = Vᵀ x itself: z̃ + Vᵀ shift. class_moments validates the
        // labels and changes nothing when it refuses them.
        vector_t shift_v = xt::zeros<double>({d});
        std::copy(shift.begin(), shift.end(), shift_v.begin());
        const vector_t vshift = project_mean(options_.basis, shift_v);
        std::vector<double> z(zs_);
        for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t j = 0; j < k; ++j) z[r * k + j] += vshift(j);
        labels_->update(batch_view(z.data(), rows, k), labels, first_row);
    }
    commit(x, sum.data(), shift.data(), mz.data(), two, halves);
}

// The state changes here and nothing can fail: scatters about the shift, then to the batch mean
// and Chan's term in one rank-one update of coefficient w − b (MATH.md §1; see moments.cpp).
void restricted_moments::commit(const batch_view& x, const double* sum, const double* shift, const double* sz,
                                detail::second_thread& two, bool halves) {
    const std::size_t d = dim(), k = this->k(), rows = x.rows;
    blas::syrk_tn(k, rows, 1.0, zs_.data(), 1.0, mzz_.data());
    // M V[block] += (x − shift)[:, block]ᵀ z̃: each half its own blocks of M V (disjoint).
    std::vector<double>* scratch[2] = {&xs_, &xs1_};
    column_blocks(x, d, shift, two, halves, scratch, [&](std::size_t c0, std::size_t cb, const double* xs, int, bool) {
        blas::gemm_tn(cb, k, rows, 1.0, xs, zs_.data(), 1.0, mxz_.data() + c0 * k);
    });
    const std::uint64_t na = n_, n = na + rows;
    const double b = static_cast<double>(rows);
    const double w = static_cast<double>(na) * b / static_cast<double>(n);
    const double f = b / static_cast<double>(n);
    std::vector<double> mx(d), mz(k);
    for (std::size_t i = 0; i < d; ++i) mx[i] = sum[i] / b;
    for (std::size_t j = 0; j < k; ++j) mz[j] = sz[j] / b;
    blas::syr_upper(k, w - b, mz.data(), mzz_.data());
    blas::ger(d, k, w - b, mx.data(), mz.data(), mxz_.data());
    for (std::size_t i = 0; i < d; ++i) mean_(i) += ((shift[i] - mean_(i)) + mx[i]) * f;
    n_ = n;
}

void restricted_moments::merge(const restricted_moments& other) {
    require_unspent(options_.basis, "merge");
    require_unspent(other.options_.basis, "merge");
    const matrix_t &a = options_.basis, &o = other.options_.basis;
    if (a.shape() != o.shape() || std::memcmp(a.data(), o.data(), a.size() * sizeof(double)) != 0)
        throw std::invalid_argument("cannot merge restricted moments of different bases (" + std::to_string(a.shape(0)) +
                                    " x " + std::to_string(a.shape(1)) + " and " + std::to_string(o.shape(0)) + " x " +
                                    std::to_string(o.shape(1)) + (a.shape() == o.shape() ? ", other values" : "") + ")");
    if (options_.classes != other.options_.classes)
        throw std::invalid_argument("cannot merge restricted moments with " + std::to_string(options_.classes) + " and " +
                                    std::to_string(other.options_.classes) + " classes");
    if (other.n_ == 0) return;
    const std::size_t d = dim(), k = this->k();
    // Copy what we read from `other` first: it may be *this.
    const restricted_moments b = other;
    if (labels_) labels_->merge(*b.labels_);  // same classes and K: cannot throw
    const std::uint64_t na = n_, nb = b.n_, n = na + nb;
    const double w = static_cast<double>(na) * static_cast<double>(nb) / static_cast<double>(n);
    const double f = static_cast<double>(nb) / static_cast<double>(n);
    vector_t delta = b.mean_ - mean_;
    const vector_t dz = project_mean(options_.basis, delta);
    mzz_ += b.mzz_;
    mxz_ += b.mxz_;
    if (na > 0) {
        blas::syr_upper(k, w, dz.data(), mzz_.data());
        blas::ger(d, k, w, delta.data(), dz.data(), mxz_.data());
    }
    mean_ += delta * f;
    n_ = n;
}

matrix_t restricted_moments::vsv(centering c) const {
    const std::size_t k = this->k();
    const vector_t mz = project_mean(options_.basis, mean_);
    const double nn = c == centering::uncentered ? static_cast<double>(n_) : 0.0;
    matrix_t out = xt::zeros<double>({k, k});
    for (std::size_t i = 0; i < k; ++i)
        for (std::size_t j = i; j < k; ++j) out(i, j) = out(j, i) = mzz_(i, j) + nn * mz(i) * mz(j);
    return out;
}

matrix_t restricted_moments::sv(centering c) const {
    matrix_t out = mxz_;
    if (c == centering::uncentered) {
        const vector_t mz = project_mean(options_.basis, mean_);
        blas::ger(dim(), k(), static_cast<double>(n_), mean_.data(), mz.data(), out.data());
    }
    return out;
}

cross_moments restricted_moments::cross(centering c) const {
    if (!labels_) throw std::logic_error("restricted_moments::cross: configured without classes");
    return labels_->cross(c);
}

restricted_statistics restricted_moments::finish(centering c) && {
    require_unspent(options_.basis, "finish");
    restricted_statistics s;
    s.center = c;
    s.n = n_;
    s.vsv = vsv(c);
    if (c == centering::uncentered) {
        const vector_t mz = project_mean(options_.basis, mean_);
        blas::ger(dim(), k(), static_cast<double>(n_), mean_.data(), mz.data(), mxz_.data());
    }
    if (labels_) s.cross = labels_->cross(c);
    s.sv = std::move(mxz_);
    s.basis = std::move(options_.basis);
    // A moved-from xtensor keeps its shape without its data: reset, so that the spent accumulator
    // has no columns (dim() and k() 0: a batch is refused) rather than a shape over no memory.
    options_.basis = matrix_t();
    mxz_ = matrix_t();
    return s;
}

restricted_statistics restricted_moments::finish(centering c) const& {
    require_unspent(options_.basis, "finish");
    restricted_statistics s;
    s.center = c;
    s.n = n_;
    s.basis = options_.basis;
    s.vsv = vsv(c);
    s.sv = sv(c);
    if (labels_) s.cross = labels_->cross(c);
    return s;
}

namespace {
// What rotated() and coordinates() share: the checks, center, n, Wᵀ (Vᵀ Sxx V) W and Wᵀ (Vᵀ Sxy).
restricted_statistics rotated_moments(const restricted_statistics& s, const matrix_t& w, const char* who) {
    const std::size_t k = s.k(), k2 = w.shape(1);
    if (w.shape(0) != k)
        throw std::invalid_argument(std::string("restricted_statistics::") + who + ": W has " +
                                    std::to_string(w.shape(0)) + " rows, the basis " + std::to_string(k) + " columns");
    restricted_statistics out;
    out.center = s.center;
    out.n = s.n;
    out.vsv = detail::congruence(s.vsv, w);
    if (s.cross) {
        cross_moments c = *s.cross;
        const std::size_t nc = c.sxy.shape(1);
        c.sxy = xt::zeros<double>({k2, nc});
        blas::gemm_tn(k2, nc, k, 1.0, w.data(), s.cross->sxy.data(), 0.0, c.sxy.data());
        out.cross = std::move(c);
    }
    return out;
}
}  // namespace

void restricted_statistics::sv_rows(std::size_t r0, std::size_t n, double* out) const {
    if (sv_stored) {
        sv_stored->read_rows(r0, n, out);
        return;
    }
    const std::size_t k = sv.shape(1);
    if (r0 > sv.shape(0) || n > sv.shape(0) - r0) throw std::out_of_range("restricted_statistics::sv_rows: beyond Sxx V");
    if (n && k) std::copy(sv.data() + r0 * k, sv.data() + (r0 + n) * k, out);
}

void restricted_statistics::load_sv() {
    if (!sv_stored) return;
    matrix_t x = matrix_t::from_shape({sv_stored->rows(), sv_stored->cols()});
    if (x.size()) sv_stored->read_rows(0, sv_stored->rows(), x.data());
    sv = std::move(x);
    sv_stored.reset();
}

void restricted_statistics::spill_sv(const std::string& dir) {
    if (sv_stored) return;
    if (!gram.size()) throw std::logic_error("restricted_statistics::spill_sv: products() first");
    auto f = std::make_shared<io::row_spill>(dir, sv.shape(0), sv.shape(1));
    if (sv.size()) f->write_rows(0, sv.shape(0), sv.data());
    sv_stored = std::move(f);
    sv = matrix_t();
}

void restricted_statistics::products() {
    if (in_coordinates() || gram.size()) return;
    load_sv();  // (never on disk without its products: complete_pass fills them)
    const std::size_t d = dim(), k = this->k();
    // By SYRK (the upper triangle, mirrored): half the flops of a GEMM, 2 D K² in all (at
    // 224x224x3, K = 1,216, the first verification's largest step; docs/benchmarks-log.md "time9").
    gram = xt::zeros<double>({k, k});
    blas::syrk_tn(k, d, 1.0, basis.data(), 0.0, gram.data());
    svsv = xt::zeros<double>({k, k});
    blas::syrk_tn(k, d, 1.0, sv.data(), 0.0, svsv.data());
    if (k) {
        blas::symmetrize_from_upper(k, gram.data());
        blas::symmetrize_from_upper(k, svsv.data());
    }
    frame = std::make_shared<const matrix_t>(gram);
}

restricted_statistics restricted_statistics::coordinates(const matrix_t& w) const {
    if (w.shape(0) == k() && (!gram.size() || !frame))
        throw std::logic_error("restricted_statistics::coordinates: products() not computed");
    restricted_statistics out = rotated_moments(*this, w, "coordinates");
    const std::size_t k = this->k(), k2 = w.shape(1);
    out.frame = frame;
    out.frame_dim = dim();
    if (in_coordinates()) {
        out.coords = xt::zeros<double>({coords.shape(0), k2});
        blas::gemm_nn(coords.shape(0), k2, k, 1.0, coords.data(), w.data(), 0.0, out.coords.data());
    } else {
        out.coords = w;
    }
    out.gram = detail::congruence(gram, w);
    out.svsv = detail::congruence(svsv, w);
    return out;
}

restricted_statistics joined(const restricted_statistics& r, const restricted_statistics& t) {
    if (r.in_coordinates() || t.in_coordinates() || r.dim() != t.dim() || r.n != t.n || r.center != t.center ||
        r.cross.has_value() != t.cross.has_value() ||
        (r.cross && (r.cross->sxy.shape(1) != t.cross->sxy.shape(1) || r.cross->center != t.cross->center)))
        throw std::invalid_argument("restricted_statistics joined: the two passes are not of the same data");
    const std::size_t d = r.dim(), a = r.k(), b = t.k(), k = a + b;
    restricted_statistics out;
    out.center = r.center;
    out.n = r.n;
    out.basis = xt::zeros<double>({d, k});
    out.sv = xt::zeros<double>({d, k});
    for (std::size_t i = 0; i < d; ++i) {
        std::copy(&r.basis(i, 0), &r.basis(i, 0) + a, &out.basis(i, 0));
        std::copy(&t.basis(i, 0), &t.basis(i, 0) + b, &out.basis(i, a));
        std::copy(&r.sv(i, 0), &r.sv(i, 0) + a, &out.sv(i, 0));
        std::copy(&t.sv(i, 0), &t.sv(i, 0) + b, &out.sv(i, a));
    }
    matrix_t rt = xt::zeros<double>({a, b});  // Rᵀ Sxx T = (Sxx R)ᵀ T
    blas::gemm_tn(a, b, d, 1.0, r.sv.data(), t.basis.data(), 0.0, rt.data());
    out.vsv = xt::zeros<double>({k, k});
    for (std::size_t i = 0; i < a; ++i)
        for (std::size_t j = 0; j < a; ++j) out.vsv(i, j) = r.vsv(i, j);
    for (std::size_t i = 0; i < b; ++i)
        for (std::size_t j = 0; j < b; ++j) out.vsv(a + i, a + j) = t.vsv(i, j);
    for (std::size_t i = 0; i < a; ++i)
        for (std::size_t j = 0; j < b; ++j) out.vsv(i, a + j) = out.vsv(a + j, i) = rt(i, j);
    if (r.cross) {
        cross_moments c = *r.cross;
        const std::size_t nc = c.sxy.shape(1);
        c.sxy = xt::zeros<double>({k, nc});
        for (std::size_t j = 0; j < nc; ++j) {
            for (std::size_t i = 0; i < a; ++i) c.sxy(i, j) = r.cross->sxy(i, j);
            for (std::size_t i = 0; i < b; ++i) c.sxy(a + i, j) = t.cross->sxy(i, j);
        }
        out.cross = std::move(c);
    }
    return out;
}

restricted_statistics restricted_statistics::rotated(const matrix_t& w) const {
    if (in_coordinates()) return coordinates(w);
    restricted_statistics out = rotated_moments(*this, w, "rotated");
    const std::size_t d = dim(), k = this->k(), k2 = w.shape(1);
    out.basis = xt::zeros<double>({d, k2});
    blas::gemm_nn(d, k2, k, 1.0, basis.data(), w.data(), 0.0, out.basis.data());
    out.sv = xt::zeros<double>({d, k2});
    blas::gemm_nn(d, k2, k, 1.0, sv.data(), w.data(), 0.0, out.sv.data());
    return out;
}

void restricted_moments::check_loaded() const {
    const std::size_t d = dim(), k = this->k();
    if (mean_.shape(0) != d || mzz_.shape(0) != k || mzz_.shape(1) != k || mxz_.shape(0) != d || mxz_.shape(1) != k)
        throw std::length_error("restricted moments: arrays of the wrong shape");
    for (const auto* t : {&mzz_, &mxz_})
        for (double v : *t)
            if (!std::isfinite(v)) throw std::length_error("restricted moments: non-finite scatter");
    for (double v : mean_)
        if (!std::isfinite(v)) throw std::length_error("restricted moments: non-finite mean");
    if (labels_ && labels_->n() != n_) throw std::length_error("restricted moments: label counts disagree with n");
}

}  // namespace recalign
