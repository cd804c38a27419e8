#include "recalign/align/tracker.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "recalign/core/errors.hpp"
#include "recalign/core/hash.hpp"

namespace recalign {

namespace {
moment_options clean_options(const tracker_options& o) {
    if (o.dim == 0) throw std::invalid_argument("alignment_tracker: dimension must be at least 1");
    if (o.classes == 0) throw std::invalid_argument("alignment_tracker: classes must be at least 1");
    if (!o.shape.empty() && o.shape.dim() != o.dim)
        throw std::invalid_argument("alignment_tracker: image shape " + std::to_string(o.shape.height) + "x" +
                                    std::to_string(o.shape.width) + "x" + std::to_string(o.shape.channels) +
                                    " does not have " + std::to_string(o.dim) + " values");
    if (o.raw_targets && o.center != centering::centered)
        throw std::invalid_argument("alignment_tracker: raw_targets needs centering::centered inputs");
    moment_options m;
    m.dim = o.dim;
    m.targets = target_mode::class_ids;
    m.classes = o.classes;
    return m;
}

double max_change(const vector_t& now, const vector_t& before) {
    const std::size_t k = std::min(now.size(), before.size());
    double m = 0.0;
    for (std::size_t i = 0; i < k; ++i) m = std::max(m, std::abs(now(i) - before(i)));
    return m;
}
}  // namespace

alignment_tracker::alignment_tracker(const tracker_options& options)
    : options_(options), moments_(clean_options(options)) {
    for (const noise_spec& s : options_.noises) {
        validate(s);
        if (s.family == noise_family::mask && s.shape.empty() && options_.shape.empty())
            throw std::invalid_argument("alignment_tracker: noise '" + to_string(s) +
                                        "' needs the image shape (tracker_options::shape)");
        if (s.family == noise_family::mask && !s.shape.empty() && s.shape.dim() != options_.dim)
            throw std::invalid_argument("alignment_tracker: noise '" + to_string(s) + "' has an image of " +
                                        std::to_string(s.shape.dim()) + " values, the data " +
                                        std::to_string(options_.dim));
        if (s.family == noise_family::mask) {
            // Fails here, not at the first report, if fixed-count masking would keep no patch.
            const image_shape sh = s.shape.empty() ? options_.shape : s.shape;
            mask_keep_probabilities(s, make_patch_map(sh, s.patch_h, s.patch_w).patches);
        }
        if (s.draws > 0) {
            if (options_.center != centering::uncentered)
                throw std::invalid_argument("alignment_tracker: Monte-Carlo noise '" + to_string(s) +
                                            "' accumulates uncentered sums; use centering::uncentered");
            monte_carlo_options mo;
            mo.dim = options_.dim;
            mo.draws = s.draws;
            mo.replicates = options_.replicates;
            mo.seed = s.seed;
            mo.name = to_string(s);
            corrupters_.push_back(make_corrupter(s, options_.shape));
            mc_.push_back(std::make_unique<monte_carlo_noise>(mo, corrupters_.back()));
        } else {
            corrupters_.emplace_back();
            mc_.emplace_back();
        }
        previous_noise_.emplace_back();
    }
}

alignment_tracker::alignment_tracker(const alignment_tracker& o)
    : options_(o.options_), moments_(o.moments_), corrupters_(o.corrupters_), reports_(o.reports_),
      has_previous_(o.has_previous_), previous_clean_(o.previous_clean_), previous_noise_(o.previous_noise_) {
    for (const auto& mc : o.mc_) mc_.push_back(mc ? std::make_unique<monte_carlo_noise>(*mc) : nullptr);
}

alignment_tracker& alignment_tracker::operator=(const alignment_tracker& o) {
    if (this != &o) {
        alignment_tracker copy(o);
        *this = std::move(copy);
    }
    return *this;
}

std::uint64_t alignment_tracker::config_hash() const {
    fnv1a h;
    h.add(std::string_view("alignment_tracker"))
        .add(static_cast<std::uint64_t>(options_.dim))
        .add(static_cast<std::uint64_t>(options_.classes))
        .add(static_cast<std::uint64_t>(options_.shape.height))
        .add(static_cast<std::uint64_t>(options_.shape.width))
        .add(static_cast<std::uint64_t>(options_.shape.channels))
        .add(static_cast<std::uint64_t>(options_.shape.layout))
        .add(static_cast<std::uint64_t>(options_.measure))
        .add(static_cast<std::uint64_t>(options_.center))
        .add(static_cast<std::uint64_t>(options_.replicates))
        .add(options_.rel_tol);
    if (options_.raw_targets) h.add(std::string_view("raw_targets"));  // absent: the hash of earlier versions
    for (const noise_spec& s : options_.noises) h.add(std::string_view(to_string(s)));
    return h.value();
}

void alignment_tracker::update(const batch_view& images, const target_view& labels) {
    update(images, labels, moments_.n());
}

void alignment_tracker::update(const batch_view& images, const target_view& labels, std::uint64_t first_row) {
    // Validate everything before any member changes: the members' own checks would leave
    // earlier members updated if a later one rejected the batch.
    if (labels.form != target_view::kind::class_ids)
        throw input_error("alignment_tracker: labels must be integer class ids");
    if (labels.rows != images.rows)
        throw input_error("alignment_tracker: " + std::to_string(images.rows) + " images but " +
                          std::to_string(labels.rows) + " labels in the batch at row " + std::to_string(first_row));
    {
        std::vector<double> x(checked_elements<double>({images.rows, options_.dim}, "alignment_tracker: batch rows x D")),
            y(checked_elements<double>({images.rows, options_.classes}, "alignment_tracker: batch rows x classes"));
        to_double_checked(images, options_.dim, x.data(), first_row);
        targets_to_double_checked(labels, images.rows, options_.classes, y.data(), first_row);
    }
    // Monte Carlo first (strong each, and the built-in corruptions cannot reject a checked
    // batch), the moments last.
    std::vector<std::unique_ptr<monte_carlo_noise>> updated(mc_.size());
    for (std::size_t i = 0; i < mc_.size(); ++i)
        if (mc_[i]) {
            updated[i] = std::make_unique<monte_carlo_noise>(*mc_[i]);
            updated[i]->update(images, first_row);
        }
    moments_.update(images, labels, first_row);
    for (std::size_t i = 0; i < mc_.size(); ++i)
        if (updated[i]) mc_[i] = std::move(updated[i]);
}

void alignment_tracker::merge(const alignment_tracker& other) {
    if (other.config_hash() != config_hash()) {
        std::string a, b;
        for (const auto& s : options_.noises) a += (a.empty() ? "" : "; ") + to_string(s);
        for (const auto& s : other.options_.noises) b += (b.empty() ? "" : "; ") + to_string(s);
        throw std::invalid_argument("cannot merge alignment trackers with different configurations: dim " +
                                    std::to_string(options_.dim) + ", classes " + std::to_string(options_.classes) +
                                    ", noises [" + a + "] and dim " + std::to_string(other.options_.dim) +
                                    ", classes " + std::to_string(other.options_.classes) + ", noises [" + b + "]");
    }
    if (other.empty()) return;
    // Copies first (other may be *this); every member merge below is then between checked
    // compatible states.
    const moment_accumulator m = other.moments_;
    std::vector<std::unique_ptr<monte_carlo_noise>> mcs;
    for (const auto& mc : other.mc_) mcs.push_back(mc ? std::make_unique<monte_carlo_noise>(*mc) : nullptr);
    moments_.merge(m);
    for (std::size_t i = 0; i < mc_.size(); ++i)
        if (mc_[i]) mc_[i]->merge(*mcs[i]);
}

noise_moments alignment_tracker::noise_expectations(std::size_t i) const {
    if (i >= options_.noises.size()) throw std::out_of_range("alignment_tracker: no noise " + std::to_string(i));
    if (mc_[i]) return mc_[i]->estimate().moments;
    return closed_form_noise(options_.noises[i], moments_.sxx(options_.center), moments_.n(), options_.shape);
}

tracker_report alignment_tracker::report(const eigen_options& solver) {
    // One Sxx and one eigendecomposition of it serve the clean curve and every noise model.
    exact_finish_options fo;
    fo.solver = solver;
    return report_on(finish(moments_, options_.center, options_.raw_targets ? centering::uncentered : options_.center, fo),
                     solver);
}

tracker_report alignment_tracker::final_report(const eigen_options& solver, const std::string& spill_dir) && {
    exact_finish_options fo;
    fo.solver = solver;
    fo.second_moment = false;  // read where it is needed before it is decomposed
    const centering targets = options_.raw_targets ? centering::uncentered : options_.center;
    if (targets != options_.center && options_.center == centering::uncentered)
        throw std::invalid_argument("finish: centering the targets but not the inputs is not supported");
    matrix_t raw_syy =
        targets != options_.center && moments_.has_targets() ? moments_.syy(centering::uncentered) : matrix_t();
    // Sxx in the accumulator's storage; every noise that needs a solve is solved beside it alone
    // (the clean eigenvectors do not exist yet), then Sxx is decomposed in its own storage.
    exact_parts parts = release_exact(std::move(moments_), options_.center, fo);
    std::vector<std::optional<solved_noise>> solved(options_.noises.size());
    for (std::size_t i = 0; i < options_.noises.size(); ++i) {
        const noise_spec& spec = options_.noises[i];
        if (mc_[i]) {
            if (parts.meta.n != mc_[i]->n())
                throw std::invalid_argument("alignment_tracker: the noise moments cover " + std::to_string(mc_[i]->n()) +
                                            " samples, the clean statistics " + std::to_string(parts.meta.n));
            // Sxx waits on disk while the estimate is formed from the sums and solved.
            std::optional<io::parked_matrix> sxx;
            if (!spill_dir.empty()) sxx.emplace(spill_dir, parts.sxx);
            solved_noise sn;
            noise_moments nm;
            {
                monte_carlo_estimate e = std::move(*mc_[i]).release_estimate();  // its sums released
                nm = std::move(e.moments);
                sn.bs_stderr_fro = e.bs_stderr_fro;
                sn.g_stderr_fro = e.g_stderr_fro;
            }
            sn.sub = denoising_subspace(std::move(nm), options_.rel_tol, solver, spill_dir);
            if (sxx) parts.sxx = sxx->restore();
            solved[i] = std::move(sn);
        } else if (spec.family != noise_family::gaussian) {
            solved[i] = solved_noise{masking_denoising_subspace(parts.sxx, spec, parts.meta.n, options_.shape,
                                                                options_.rel_tol, solver, spill_dir),
                                     nullptr};
        }
        // V* waits on disk until the clean eigenvectors exist.
        if (solved[i] && !spill_dir.empty())
            solved[i]->basis = std::make_unique<io::parked_matrix>(spill_dir, solved[i]->sub.basis);
    }
    statistics clean = finish(std::move(parts), fo);
    if (targets != options_.center) clean = with_raw_targets(std::move(clean), raw_syy);
    return report_on(clean, solver, &solved);
}

tracker_report alignment_tracker::report_on(const statistics& clean, const eigen_options& solver,
                                            std::vector<std::optional<solved_noise>>* solved) {
    tracker_report r;
    r.n = clean.n;
    r.reports = reports_;
    alignment_options ao;
    ao.measure = options_.measure;
    ao.rel_tol = options_.rel_tol;
    r.clean = alignment_curve(clean, ao);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    r.clean_change = has_previous_ ? max_change(r.clean.curve, previous_clean_) : nan;
    for (std::size_t i = 0; i < options_.noises.size(); ++i) {
        tracker_noise_report nr;
        nr.spec = to_string(options_.noises[i]);
        nr.monte_carlo = mc_[i] != nullptr;
        const noise_spec& spec = options_.noises[i];
        // One V* per noise serves both analyses; the noise moments are released as it is found.
        denoising_subspace_result sub = [&] {
            if (solved && (*solved)[i]) {
                solved_noise& sn = *(*solved)[i];
                nr.bs_stderr_fro = sn.bs_stderr_fro;
                nr.g_stderr_fro = sn.g_stderr_fro;
                denoising_subspace_result out = std::move(sn.sub);
                if (sn.basis) out.basis = sn.basis->restore();
                (*solved)[i].reset();
                return out;
            }
            if (!mc_[i] && spec.family == noise_family::gaussian)  // Corollary 3.1: no D x D solve
                return gaussian_denoising_subspace(clean, static_cast<double>(clean.n) * spec.sigma * spec.sigma,
                                                   options_.rel_tol);
            noise_moments nm;
            if (mc_[i]) {
                const monte_carlo_estimate e = mc_[i]->estimate();
                nm = e.moments;
                nr.bs_stderr_fro = e.bs_stderr_fro;
                nr.g_stderr_fro = e.g_stderr_fro;
            } else {
                nm = closed_form_noise(spec, *clean.second_moment, clean.n, options_.shape);
            }
            if (nm.n != clean.n)
                throw std::invalid_argument("alignment_tracker: the noise moments cover " + std::to_string(nm.n) +
                                            " samples, the clean statistics " + std::to_string(clean.n));
            return denoising_subspace(std::move(nm), options_.rel_tol, solver);
        }();
        noise_impact_options iopt;
        iopt.rel_tol = options_.rel_tol;
        nr.impact = noise_impact(clean, sub, iopt);
        denoising_options dopt;
        dopt.measure = options_.measure;
        dopt.rel_tol = options_.rel_tol;
        nr.denoising = denoising_alignment(clean, std::move(sub), dopt);
        if (solved) nr.denoising.subspace.basis = matrix_t();  // measured: released before the next
        nr.change = has_previous_ ? max_change(nr.denoising.curve, previous_noise_[i]) : nan;
        r.noises.push_back(std::move(nr));
    }
    previous_clean_ = r.clean.curve;
    for (std::size_t i = 0; i < r.noises.size(); ++i) previous_noise_[i] = r.noises[i].denoising.curve;
    has_previous_ = true;
    ++reports_;
    return r;
}

void alignment_tracker::check_loaded() const {
    if (moments_.dim() != options_.dim || moments_.classes() != options_.classes ||
        moments_.options().targets != target_mode::class_ids)
        throw std::length_error("the tracker's moments disagree with its configuration");
    if (previous_clean_.size() > options_.dim) throw std::length_error("previous curve too long");
    for (const vector_t& v : previous_noise_)
        if (v.size() > options_.dim) throw std::length_error("previous curve too long");
}

}  // namespace recalign
