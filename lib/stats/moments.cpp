#include "recalign/stats/moments.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "recalign/core/blas.hpp"
#include "recalign/core/errors.hpp"
#include "recalign/core/hash.hpp"

namespace recalign {

const char* centering_name(centering c) { return c == centering::centered ? "centered" : "uncentered"; }

namespace {
const char* mode_name(target_mode m) {
    switch (m) {
        case target_mode::none: return "none";
        case target_mode::class_ids: return "class ids";
        case target_mode::dense: return "dense targets";
    }
    return "unknown";
}

void check_options(const moment_options& o) {
    if (o.dim == 0) throw std::invalid_argument("moment_accumulator: dimension must be at least 1");
    blas::to_blas_int(o.dim, "dimension");
    if (o.targets == target_mode::none && o.classes != 0)
        throw std::invalid_argument("moment_accumulator: classes = " + std::to_string(o.classes) +
                                    " given without a target mode");
    if (o.targets != target_mode::none && o.classes == 0)
        throw std::invalid_argument("moment_accumulator: a target mode needs classes >= 1");
    if (o.targets != target_mode::none) blas::to_blas_int(o.classes, "classes");
}

// Mean of the rows of a (rows x cols) buffer, then subtracts it from every row.
template <class T>
void center_rows(T* data, std::size_t rows, std::size_t cols, double* mean) {
    std::fill(mean, mean + cols, 0.0);
    for (std::size_t r = 0; r < rows; ++r) {
        const T* row = data + r * cols;
        for (std::size_t c = 0; c < cols; ++c) mean[c] += static_cast<double>(row[c]);
    }
    const double inv = 1.0 / static_cast<double>(rows);
    for (std::size_t c = 0; c < cols; ++c) mean[c] *= inv;
    for (std::size_t r = 0; r < rows; ++r) {
        T* row = data + r * cols;
        for (std::size_t c = 0; c < cols; ++c) row[c] = static_cast<T>(static_cast<double>(row[c]) - mean[c]);
    }
}
}  // namespace

moment_accumulator::moment_accumulator(const moment_options& options) : options_(options) {
    check_options(options_);
    const std::size_t d = options_.dim, c = options_.classes;
    mean_x_ = xt::zeros<double>({d});
    mxx_ = xt::zeros<double>({d, d});
    if (has_targets()) {
        mean_y_ = xt::zeros<double>({c});
        mxy_ = xt::zeros<double>({d, c});
        myy_ = xt::zeros<double>({c, c});
    }
}

std::uint64_t moment_accumulator::config_hash() const {
    return fnv1a()
        .add(std::string_view("moment_accumulator"))
        .add(static_cast<std::uint64_t>(options_.dim))
        .add(static_cast<std::uint64_t>(options_.targets))
        .add(static_cast<std::uint64_t>(options_.classes))
        .value();
}

void moment_accumulator::update(const batch_view& x, std::uint64_t first_row) {
    update(x, target_view::none(), first_row);
}

void moment_accumulator::update(const batch_view& x, const target_view& y, std::uint64_t first_row) {
    const std::size_t d = options_.dim, c = options_.classes, rows = x.rows;
    // --- validation and conversion into scratch: nothing of the state changes here ---
    if (has_targets() && y.form == target_view::kind::none)
        throw input_error("this accumulator collects targets (" + std::string(mode_name(options_.targets)) +
                          "): every batch needs them");
    if (!has_targets() && y.form != target_view::kind::none)
        throw input_error("targets given to an accumulator configured without targets");
    if (has_targets() && options_.targets == target_mode::class_ids && y.form != target_view::kind::class_ids)
        throw input_error("this accumulator takes integer class ids as targets, got dense rows");
    if (has_targets() && options_.targets == target_mode::dense && y.form != target_view::kind::dense)
        throw input_error("this accumulator takes dense target rows, got class ids");
    blas::to_blas_int(rows, "batch rows");
    const bool single = options_.float32_kernels && x.type == dtype::f32;
    std::vector<double> mean_b(d);
    if (single) {
        xf_.resize(rows * d);
        to_float_checked(x, d, xf_.data(), first_row);
    } else {
        xb_.resize(rows * d);
        to_double_checked(x, d, xb_.data(), first_row);
    }
    std::vector<double> mean_yb;
    if (has_targets()) {
        yb_.resize(rows * c);
        targets_to_double_checked(y, rows, c, yb_.data(), first_row);
        mean_yb.resize(c);
    }
    if (rows == 0) return;
    if (single) {
        center_rows(xf_.data(), rows, d, mean_b.data());
        sf_.resize(d * d);
        blas::syrk_tn(d, rows, 1.0f, xf_.data(), 0.0f, sf_.data());
    } else {
        center_rows(xb_.data(), rows, d, mean_b.data());
    }
    if (has_targets()) center_rows(yb_.data(), rows, c, mean_yb.data());

    // --- the state changes from here on; nothing below can fail ---
    if (single) {
        for (std::size_t i = 0; i < d; ++i)
            for (std::size_t j = i; j < d; ++j) mxx_(i, j) += static_cast<double>(sf_[i * d + j]);
    } else {
        blas::syrk_tn(d, rows, 1.0, xb_.data(), 1.0, mxx_.data());
    }
    if (has_targets()) {
        // The batch's own cross scatter needs the centered inputs in double; the float32
        // path widens them once here (O(bD), against the O(bD²) scatter).
        if (single) {
            xb_.resize(rows * d);
            std::copy(xf_.begin(), xf_.end(), xb_.begin());
        }
        blas::gemm_tn(d, c, rows, 1.0, xb_.data(), yb_.data(), 1.0, mxy_.data());
        blas::syrk_tn(c, rows, 1.0, yb_.data(), 1.0, myy_.data());
    }
    fold_in(rows, mean_b.data(), has_targets() ? mean_yb.data() : nullptr);
}

// Chan's correction for a block of nb samples with means (mean_b, mean_yb) whose centered
// scatters were already added: MATH.md §1.
void moment_accumulator::fold_in(std::uint64_t nb, const double* mean_b, const double* mean_yb) {
    const std::size_t d = options_.dim, c = options_.classes;
    const std::uint64_t na = n_, n = na + nb;
    const double w = static_cast<double>(na) * static_cast<double>(nb) / static_cast<double>(n);
    const double f = static_cast<double>(nb) / static_cast<double>(n);
    delta_.resize(d + c);
    double* dx = delta_.data();
    double* dy = delta_.data() + d;
    for (std::size_t i = 0; i < d; ++i) dx[i] = mean_b[i] - mean_x_(i);
    if (has_targets())
        for (std::size_t i = 0; i < c; ++i) dy[i] = mean_yb[i] - mean_y_(i);
    if (na > 0) {
        blas::syr_upper(d, w, dx, mxx_.data());
        if (has_targets()) {
            blas::ger(d, c, w, dx, dy, mxy_.data());
            blas::syr_upper(c, w, dy, myy_.data());
        }
    }
    for (std::size_t i = 0; i < d; ++i) mean_x_(i) += dx[i] * f;
    if (has_targets())
        for (std::size_t i = 0; i < c; ++i) mean_y_(i) += dy[i] * f;
    n_ = n;
}

void moment_accumulator::merge(const moment_accumulator& other) {
    if (other.options_.dim != options_.dim)
        throw std::invalid_argument("cannot merge moment accumulators of dimension " + std::to_string(options_.dim) +
                                    " and " + std::to_string(other.options_.dim));
    if (other.options_.targets != options_.targets || other.options_.classes != options_.classes)
        throw std::invalid_argument(std::string("cannot merge moment accumulators with targets '") +
                                    mode_name(options_.targets) + "' x " + std::to_string(options_.classes) +
                                    " and '" + mode_name(other.options_.targets) + "' x " +
                                    std::to_string(other.options_.classes));
    if (other.n_ == 0) return;
    // Copy what we read from `other` first: it may be *this.
    const vector_t mean_b = other.mean_x_;
    const vector_t mean_yb = other.mean_y_;
    const std::uint64_t nb = other.n_;
    mxx_ += other.mxx_;
    if (has_targets()) {
        mxy_ += other.mxy_;
        myy_ += other.myy_;
    }
    fold_in(nb, mean_b.data(), has_targets() ? mean_yb.data() : nullptr);
}

matrix_t moment_accumulator::sxx(centering c) const {
    matrix_t s = mxx_;
    const std::size_t d = options_.dim;
    if (c == centering::uncentered) blas::syr_upper(d, static_cast<double>(n_), mean_x_.data(), s.data());
    blas::symmetrize_from_upper(d, s.data());
    return s;
}

matrix_t moment_accumulator::sxy(centering c) const {
    if (!has_targets()) throw std::logic_error("sxy: this accumulator was configured without targets");
    matrix_t s = mxy_;
    if (c == centering::uncentered)
        blas::ger(options_.dim, options_.classes, static_cast<double>(n_), mean_x_.data(), mean_y_.data(), s.data());
    return s;
}

matrix_t moment_accumulator::syy(centering c) const {
    if (!has_targets()) throw std::logic_error("syy: this accumulator was configured without targets");
    matrix_t s = myy_;
    if (c == centering::uncentered) blas::syr_upper(options_.classes, static_cast<double>(n_), mean_y_.data(), s.data());
    blas::symmetrize_from_upper(options_.classes, s.data());
    return s;
}

cross_moments moment_accumulator::cross(centering c) const { return {c, n_, sxy(c), syy(c)}; }

double moment_accumulator::trace_xx(centering c) const {
    double t = 0.0;
    for (std::size_t i = 0; i < options_.dim; ++i) t += mxx_(i, i);
    if (c == centering::uncentered) {
        double m2 = 0.0;
        for (std::size_t i = 0; i < options_.dim; ++i) m2 += mean_x_(i) * mean_x_(i);
        t += static_cast<double>(n_) * m2;
    }
    return t;
}

moment_options moment_accumulator::validated_options(std::uint64_t dim, std::uint8_t mode, std::uint64_t classes,
                                                     std::uint8_t f32, const checkpoint::budget& b) {
    if (dim == 0 || dim > checkpoint::max_dim) throw std::length_error("dimension " + std::to_string(dim) + " out of range");
    if (mode > 2) throw std::length_error("unknown target mode " + std::to_string(mode));
    if (classes > checkpoint::max_dim) throw std::length_error("classes " + std::to_string(classes) + " out of range");
    if (f32 > 1) throw std::length_error("bad float32 flag");
    // The arrays the constructor allocates must fit in what the payload still holds.
    const std::uint64_t words = b.left / 8;
    if (dim > words / dim) throw std::length_error("a " + std::to_string(dim) + "-dimensional state cannot fit in the payload");
    const std::uint64_t need = dim * dim + dim + (mode ? classes * classes + dim * classes + classes : 0);
    if ((mode && (classes > words / classes || classes > words / dim)) || need > words)
        throw std::length_error("the payload is too small for the state its configuration announces");
    moment_options o;
    o.dim = static_cast<std::size_t>(dim);
    o.targets = static_cast<target_mode>(mode);
    o.classes = static_cast<std::size_t>(classes);
    o.float32_kernels = f32 != 0;
    check_options(o);
    return o;
}

void moment_accumulator::check_shapes() const {
    const std::size_t d = options_.dim, c = options_.classes;
    auto bad = [](const char* what) { throw std::length_error(std::string(what) + " has the wrong shape"); };
    if (mean_x_.shape(0) != d) bad("mean_x");
    if (mxx_.shape(0) != d || mxx_.shape(1) != d) bad("Mxx");
    if (has_targets()) {
        if (mean_y_.shape(0) != c) bad("mean_y");
        if (mxy_.shape(0) != d || mxy_.shape(1) != c) bad("Mxy");
        if (myy_.shape(0) != c || myy_.shape(1) != c) bad("Myy");
    }
}

}  // namespace recalign
