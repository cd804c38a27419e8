#include "engine.hpp"

#include <cstring>
#include <sstream>
#include <stdexcept>

#include "recalign/core/checked.hpp"
#include "recalign/core/errors.hpp"

namespace recalign::cli {

bool method_available(const std::string& method) { return method == "exact" || method == "fd" || method == "nystrom"; }

// ---- class_sums ------------------------------------------------------------------------

class_sums::class_sums(std::size_t dim, std::size_t classes)
    : dim_(dim), classes_(classes), count_(classes, 0), mean_(dim * classes, 0.0) {}

void class_sums::update(const batch_view& batch, const std::int64_t* labels, std::uint64_t first_row) {
    const std::size_t rows = batch.rows;
    x_.resize(checked_elements<double>({rows, dim_}, "batch rows x D"));
    to_double_checked(batch, dim_, x_.data(), first_row);
    const double* x = x_.data();
    sum_.assign(dim_ * classes_, 0.0);
    batch_count_.assign(classes_, 0);
    for (std::size_t r = 0; r < rows; ++r) {
        const auto c = static_cast<std::size_t>(labels[r]);
        double* s = &sum_[c * dim_];
        for (std::size_t j = 0; j < dim_; ++j) s[j] += x[r * dim_ + j];
        ++batch_count_[c];
    }
    for (std::size_t c = 0; c < classes_; ++c) {
        const std::uint64_t nb = batch_count_[c];
        if (!nb) continue;
        count_[c] += nb;
        const double w = static_cast<double>(nb) / static_cast<double>(count_[c]);
        double* m = &mean_[c * dim_];
        const double* s = &sum_[c * dim_];
        for (std::size_t j = 0; j < dim_; ++j) m[j] += w * (s[j] / static_cast<double>(nb) - m[j]);
    }
}

void class_sums::merge(const class_sums& o) {
    for (std::size_t c = 0; c < classes_; ++c) {
        if (!o.count_[c]) continue;
        const std::uint64_t n = count_[c] + o.count_[c];
        const double w = static_cast<double>(o.count_[c]) / static_cast<double>(n);
        for (std::size_t j = 0; j < dim_; ++j) mean_[c * dim_ + j] += w * (o.mean_[c * dim_ + j] - mean_[c * dim_ + j]);
        count_[c] = n;
    }
}

cross_moments class_sums::cross(centering cen) const {
    cross_moments out;
    out.center = cen;
    std::uint64_t n = 0;
    for (std::uint64_t k : count_) n += k;
    out.n = n;
    out.sxy = xt::zeros<double>({dim_, classes_});
    out.syy = xt::zeros<double>({classes_, classes_});
    std::vector<double> mu(dim_, 0.0);
    if (cen == centering::centered && n) {
        for (std::size_t c = 0; c < classes_; ++c)
            for (std::size_t j = 0; j < dim_; ++j)
                mu[j] += static_cast<double>(count_[c]) / static_cast<double>(n) * mean_[c * dim_ + j];
    }
    for (std::size_t c = 0; c < classes_; ++c) {
        const double nc = static_cast<double>(count_[c]);
        for (std::size_t j = 0; j < dim_; ++j) out.sxy(j, c) = nc * (mean_[c * dim_ + j] - mu[j]);
        out.syy(c, c) = nc;
        if (cen == centering::centered && n)
            for (std::size_t e = 0; e < classes_; ++e)
                out.syy(c, e) -= nc * static_cast<double>(count_[e]) / static_cast<double>(n);
    }
    return out;
}

std::string class_sums::save() const {
    std::string out(sizeof(std::uint64_t) * count_.size() + sizeof(double) * mean_.size(), '\0');
    std::memcpy(out.data(), count_.data(), sizeof(std::uint64_t) * count_.size());
    std::memcpy(out.data() + sizeof(std::uint64_t) * count_.size(), mean_.data(), sizeof(double) * mean_.size());
    return out;
}

class_sums class_sums::load(const std::string& bytes, std::size_t dim, std::size_t classes, const std::string& source) {
    // dim and classes come from the checkpoint's run state: a wrapped 8·D·C could match a
    // short byte string. Checked (size_overflow is an invalid_argument: a user error).
    const std::uint64_t need = checked_bytes<double>(
        checked_mul(checked_add(dim, 1, "class statistics"), classes, "class statistics: (D + 1) x C"),
        "class statistics");
    class_sums s(dim, classes);
    if (bytes.size() != need)
        throw file_error(source, checkpoint::header_bytes, "class statistics of the wrong size in the checkpoint");
    std::memcpy(s.count_.data(), bytes.data(), 8 * classes);
    std::memcpy(s.mean_.data(), bytes.data() + 8 * classes, 8 * dim * classes);
    return s;
}

// ---- engine ----------------------------------------------------------------------------

engine::engine(const run_config& config) : config_(config) {
    const auto dim = static_cast<std::size_t>(config.dim);
    if (config.method == "exact") {
        moment_options o;
        o.dim = dim;
        o.targets = config.classes ? target_mode::class_ids : target_mode::none;
        o.classes = static_cast<std::size_t>(config.classes);
        o.float32_kernels = config.float32_kernels;
        moments_.emplace(o);
        return;
    }
    if (config.rank == 0 || config.rank > config.dim)
        throw std::invalid_argument("--method " + config.method + " needs --rank K with 1 <= K <= D = " +
                                    std::to_string(config.dim));
    const centering c = static_cast<centering>(config.center);
    if (config.method == "fd") {
        if (config.passes != 1) throw std::invalid_argument("--passes applies to --method nystrom only");
        frequent_directions_options o;
        o.dim = dim;
        o.ell = static_cast<std::size_t>(std::min<std::uint64_t>(2 * config.rank, config.dim));
        o.center = c;
        fd_.emplace(o);
    } else if (config.method == "nystrom") {
        if (config.passes < 1 || config.passes > 100) throw std::invalid_argument("--passes must lie in [1, 100]");
        nystrom_options o;
        o.dim = dim;
        o.rank = static_cast<std::size_t>(config.rank);
        o.oversampling = std::min<std::size_t>(10, dim - o.rank);
        o.probes = std::min<std::size_t>(10, dim);
        o.seed = config.seed;
        o.center = c;
        o.float32_kernels = config.float32_kernels;
        nystrom_.emplace(o);
    } else {
        throw std::invalid_argument("unknown --method " + config.method);
    }
    if (config.classes) {
        checked_elements<double>({dim, config.classes}, "class means D x C");  // before class_sums allocates
        classes_.emplace(dim, static_cast<std::size_t>(config.classes));
    }
}

void engine::update(const io::source_batch& b, std::uint64_t pass) {
    if (moments_) {
        if (config_.classes) moments_->update(b.view(), b.targets(), b.first_row);
        else moments_->update(b.view(), b.first_row);
        return;
    }
    if (classes_ && pass == 0) {
        // Check the labels before the sketch changes (strong guarantee for the pair).
        for (std::size_t r = 0; r < b.rows; ++r)
            if (b.labels[r] < 0 || static_cast<std::uint64_t>(b.labels[r]) >= config_.classes)
                throw std::invalid_argument("row " + std::to_string(b.first_row + r) + ": label " +
                                            std::to_string(b.labels[r]) + " is out of range [0, " +
                                            std::to_string(config_.classes) + ")");
    }
    if (fd_) fd_->update(b.view(), b.first_row);
    if (nystrom_) nystrom_->update(b.view(), b.first_row);
    if (classes_ && pass == 0) classes_->update(b.view(), b.labels.data(), b.first_row);
}

void engine::merge(const engine& other) {
    if (const std::string d = config_.difference(other.config_, "this state", "the other"); !d.empty())
        throw std::invalid_argument("cannot merge: " + d);
    if (moments_) moments_->merge(*other.moments_);
    if (fd_) fd_->merge(*other.fd_);
    if (nystrom_) nystrom_->merge(*other.nystrom_);
    if (classes_) classes_->merge(*other.classes_);
}

namespace {
void put_u64(std::string& s, std::uint64_t v) { s.append(reinterpret_cast<const char*>(&v), 8); }
}  // namespace

std::string engine::save() const {
    if (moments_) return checkpoint::to_bytes(*moments_);
    // Sketch runs: [u64 length][framed sketch][class statistics (if labels)]
    std::string out;
    const std::string sketch = fd_ ? checkpoint::to_bytes(*fd_) : checkpoint::to_bytes(*nystrom_);
    put_u64(out, sketch.size());
    out += sketch;
    if (classes_) out += classes_->save();
    return out;
}

void engine::load(const std::string& bytes, const std::string& source) {
    const std::string what = source + " (nested accumulator)";
    if (moments_) {
        moment_accumulator m = checkpoint::from_bytes<moment_accumulator>(bytes, what);
        if (m.dim() != config_.dim || m.classes() != config_.classes)
            throw file_error(source, checkpoint::header_bytes, "nested accumulator disagrees with the run configuration");
        moments_.emplace(std::move(m));
        return;
    }
    std::uint64_t len = 0;
    if (bytes.size() < 8) throw file_error(source, checkpoint::header_bytes, "sketch state missing");
    std::memcpy(&len, bytes.data(), 8);
    if (len > bytes.size() - 8) throw file_error(source, checkpoint::header_bytes, "sketch state truncated");
    const std::string_view sketch = std::string_view(bytes).substr(8, static_cast<std::size_t>(len));
    if (fd_) {
        frequent_directions f = checkpoint::from_bytes<frequent_directions>(sketch, what);
        if (f.dim() != config_.dim || f.options().ell != fd_->options().ell || f.options().center != fd_->options().center)
            throw file_error(source, checkpoint::header_bytes, "nested sketch disagrees with the run configuration");
        fd_.emplace(std::move(f));
    }
    if (nystrom_) {
        nystrom_sketch s = checkpoint::from_bytes<nystrom_sketch>(sketch, what);
        if (s.dim() != config_.dim || s.options().rank != nystrom_->options().rank || s.options().seed != config_.seed ||
            s.options().center != nystrom_->options().center)
            throw file_error(source, checkpoint::header_bytes, "nested sketch disagrees with the run configuration");
        nystrom_.emplace(std::move(s));
    }
    const std::string rest = bytes.substr(8 + static_cast<std::size_t>(len));
    if (classes_) classes_.emplace(class_sums::load(rest, static_cast<std::size_t>(config_.dim),
                                                    static_cast<std::size_t>(config_.classes), source));
    else if (!rest.empty()) throw file_error(source, checkpoint::header_bytes, "unexpected bytes after the sketch");
}

std::uint64_t engine::n() const {
    if (moments_) return moments_->n();
    if (fd_) return fd_->n();
    return nystrom_->n();
}

void engine::next_pass() {
    if (nystrom_) nystrom_->next_pass();
}

void engine::check_centering(centering c) const {
    if (moments_) return;
    const auto have = static_cast<centering>(config_.center);
    if (have != c)
        throw std::invalid_argument(std::string("this ") + config_.method + " sketch holds the " + centering_name(have) +
                                    " second moment, not the " + centering_name(c) + " one (choose --center or " +
                                    "--no-center when it is built)");
}

spectrum engine::get_spectrum(centering c) const {
    if (moments_) return exact_spectrum(*moments_, c);
    check_centering(c);
    if (fd_) {
        frequent_directions_spectrum_options o;
        o.rank = static_cast<std::size_t>(config_.rank);
        return frequent_directions_spectrum(*fd_, o);
    }
    nystrom_spectrum_options o;
    o.rank = static_cast<std::size_t>(config_.rank);
    return nystrom_spectrum(*nystrom_, o);
}

cross_moments engine::cross(centering c) const {
    if (moments_) return moments_->cross(c);
    if (!classes_) throw std::invalid_argument("this run has no labels");
    return classes_->cross(c);
}

statistics engine::finish(centering c) const {
    if (moments_) return recalign::finish(*moments_, c);
    std::optional<cross_moments> labels;
    if (classes_) labels = classes_->cross(c);
    return make_statistics(get_spectrum(c), mean(), std::move(labels));
}

vector_t engine::mean() const {
    if (moments_) return moments_->mean_x();
    if (fd_) return fd_->mean();
    return nystrom_->mean();
}

const moment_accumulator& engine::moments() const {
    if (!moments_) throw std::invalid_argument("this analysis needs --method exact (the run used " + config_.method + ")");
    return *moments_;
}

}  // namespace recalign::cli
