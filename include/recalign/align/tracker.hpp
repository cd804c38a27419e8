// One object to feed minibatches of (images, class labels) that owns the clean moments and
// any number of noise models (closed form, or Monte Carlo when a spec asks for draws), and
// reports the current curves — clean alignment, denoising alignment, noise impact — with how
// much each changed since the previous report. Checkpoints, resumes and merges as a whole.
#pragma once

#include <cstdint>
#include <istream>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include <cereal/types/string.hpp>

#include "recalign/align/alignment.hpp"
#include "recalign/align/denoising.hpp"
#include "recalign/align/noise.hpp"
#include "recalign/core/batch.hpp"
#include "recalign/core/checked.hpp"
#include "recalign/io/checkpoint.hpp"
#include "recalign/stats/moments.hpp"

namespace recalign {

struct tracker_options {
    std::size_t dim = 0;      // D
    std::size_t classes = 0;  // C (labels are class ids in [0, C))
    image_shape shape;        // geometry of the rows (needed by mask noises without their own shape)
    std::vector<noise_spec> noises;
    alignment_measure measure = alignment_measure::paper;
    centering center = centering::uncentered;  // Monte-Carlo noises need uncentered
    std::size_t replicates = 2;  // Monte-Carlo replicate groups (standard error)
    double rel_tol = 1e-12;
};

struct tracker_noise_report {
    std::string spec;  // canonical text of the noise spec
    bool monte_carlo = false;
    denoising_result denoising;
    noise_impact_result impact;
    double bs_stderr_fro = 0.0;  // Monte Carlo only (0 for closed forms)
    double g_stderr_fro = 0.0;
    double change = 0.0;  // max |Δ denoising curve| since the previous report (NaN at the first)
};

struct tracker_report {
    std::uint64_t n = 0;
    std::uint64_t reports = 0;  // how many reports before this one
    alignment_result clean;
    double clean_change = 0.0;  // max |Δ clean curve| since the previous report (NaN at the first)
    std::vector<tracker_noise_report> noises;
};

class alignment_tracker {
public:
    static constexpr checkpoint::state_kind kind = checkpoint::state_kind::tracker;

    explicit alignment_tracker(const tracker_options& options);
    alignment_tracker(const alignment_tracker& other);
    alignment_tracker& operator=(const alignment_tracker& other);
    alignment_tracker(alignment_tracker&&) noexcept = default;
    alignment_tracker& operator=(alignment_tracker&&) noexcept = default;

    // images: rows = samples (D values each); labels: class ids, one per row. first_row
    // (default n()) is the global index of the first row: the Monte-Carlo noise of a sample is
    // keyed by it, so shards given their true offsets merge into exactly one stream's draws.
    // The batch and labels are validated before anything changes (strong guarantee).
    void update(const batch_view& images, const target_view& labels);
    void update(const batch_view& images, const target_view& labels, std::uint64_t first_row);

    // Merges moments and every noise model; incompatible trackers (options, noise list) throw
    // std::invalid_argument before any change. The previous-report curves stay this one's.
    void merge(const alignment_tracker& other);

    // Current curves; remembers them for the next report's change.
    tracker_report report();

    void save(std::ostream& os) const { checkpoint::save_state(os, *this); }
    static alignment_tracker load(std::istream& is) { return checkpoint::load_state<alignment_tracker>(is); }

    std::uint64_t n() const noexcept { return moments_.n(); }
    std::size_t dim() const noexcept { return options_.dim; }
    std::uint64_t aux_dim() const noexcept { return options_.classes; }
    bool empty() const noexcept { return moments_.empty(); }
    const tracker_options& options() const noexcept { return options_; }
    const moment_accumulator& moments() const noexcept { return moments_; }
    std::uint64_t config_hash() const;
    // Noise expectations of noise i (closed form from the current moments, or the Monte-Carlo
    // estimate), as report() uses them.
    noise_moments noise_expectations(std::size_t i) const;

    template <class Archive>
    void save_payload(Archive& ar) const {
        ar(static_cast<std::uint64_t>(options_.dim), static_cast<std::uint64_t>(options_.classes),
           static_cast<std::uint64_t>(options_.shape.height), static_cast<std::uint64_t>(options_.shape.width),
           static_cast<std::uint64_t>(options_.shape.channels), static_cast<std::uint8_t>(options_.shape.layout),
           static_cast<std::uint8_t>(options_.measure), static_cast<std::uint8_t>(options_.center),
           static_cast<std::uint64_t>(options_.replicates), options_.rel_tol,
           static_cast<std::uint64_t>(options_.noises.size()));
        for (const noise_spec& s : options_.noises) ar(to_string(s));
        moments_.save_payload(ar);
        for (const auto& mc : mc_)
            if (mc) mc->save_payload(ar);
        ar(reports_, static_cast<std::uint8_t>(has_previous_));
        checkpoint::save_tensor(ar, previous_clean_);
        for (const vector_t& v : previous_noise_) checkpoint::save_tensor(ar, v);
    }

    template <class Archive>
    static alignment_tracker load_payload(Archive& ar, checkpoint::budget& b) {
        std::uint64_t dim = 0, classes = 0, h = 0, w = 0, c = 0, reps = 0, count = 0;
        std::uint8_t layout = 0, measure = 0, center = 0, has_prev = 0;
        tracker_options o;
        checkpoint::load_scalar(ar, dim, b);
        checkpoint::load_scalar(ar, classes, b);
        checkpoint::load_scalar(ar, h, b);
        checkpoint::load_scalar(ar, w, b);
        checkpoint::load_scalar(ar, c, b);
        checkpoint::load_scalar(ar, layout, b);
        checkpoint::load_scalar(ar, measure, b);
        checkpoint::load_scalar(ar, center, b);
        checkpoint::load_scalar(ar, reps, b);
        checkpoint::load_scalar(ar, o.rel_tol, b);
        checkpoint::load_scalar(ar, count, b);
        if (dim == 0 || dim > checkpoint::max_dim || classes == 0 || classes > checkpoint::max_dim ||
            h > checkpoint::max_dim || w > checkpoint::max_dim || c > checkpoint::max_dim || layout < 1 || layout > 2 ||
            measure < 1 || measure > 3 || center < 1 || center > 2 || reps > (1u << 20) || count > b.left / 8)
            throw std::length_error("tracker configuration out of range");
        o.dim = static_cast<std::size_t>(dim);
        o.classes = static_cast<std::size_t>(classes);
        o.shape = {static_cast<std::size_t>(h), static_cast<std::size_t>(w), static_cast<std::size_t>(c),
                   static_cast<image_layout>(layout)};
        o.measure = static_cast<alignment_measure>(measure);
        o.center = static_cast<centering>(center);
        o.replicates = static_cast<std::size_t>(reps);
        for (std::uint64_t i = 0; i < count; ++i) {
            std::uint64_t len = 0;
            checkpoint::load_scalar(ar, len, b);
            b.take(len, "noise spec");
            std::string text(static_cast<std::size_t>(len), '\0');
            ar(cereal::binary_data(&text[0], text.size()));
            o.noises.push_back(parse_noise_spec(text));
        }
        {
            // The constructor below allocates the clean moment state ((D+C)^2 + D+C doubles) and
            // 2 x replicates D x D matrices per Monte-Carlo noise, all of which the payload must
            // still hold: refuse before allocating (fuzzing found a payload asking for 8 TB;
            // tests/fuzz/corpus/checkpoint/regression).
            const std::uint64_t words = b.left / 8;
            const std::uint64_t p = checked_add(dim, classes, "tracker checkpoint: D + C");
            std::uint64_t need = checked_add(checked_mul(p, p, "tracker checkpoint: (D + C)^2"), p,
                                             "tracker checkpoint: moment state");
            if (need > words) throw std::length_error("tracker state cannot fit in the payload");
            for (const noise_spec& s : o.noises) {
                if (s.draws == 0) continue;
                need = checked_add(need, checked_product({2, reps, dim, dim}, "tracker checkpoint: Monte-Carlo sums"),
                                   "tracker checkpoint: state size");
                if (need > words) throw std::length_error("tracker Monte-Carlo state cannot fit in the payload");
            }
        }
        alignment_tracker t(o);
        t.moments_ = moment_accumulator::load_payload(ar, b);
        for (auto& mc : t.mc_)
            if (mc) {
                monte_carlo_noise loaded = monte_carlo_noise::load_payload(ar, b);
                if (loaded.config_hash() != mc->config_hash())
                    throw std::length_error("a Monte-Carlo noise state disagrees with its spec");
                loaded.set_corrupter(t.corrupters_[&mc - &t.mc_[0]]);
                *mc = std::move(loaded);
            }
        checkpoint::load_scalar(ar, t.reports_, b);
        checkpoint::load_scalar(ar, has_prev, b);
        t.has_previous_ = has_prev != 0;
        checkpoint::load_tensor(ar, t.previous_clean_, b);
        for (vector_t& v : t.previous_noise_) checkpoint::load_tensor(ar, v, b);
        t.check_loaded();
        return t;
    }

private:
    void check_loaded() const;

    tracker_options options_;
    moment_accumulator moments_;
    std::vector<corrupt_fn> corrupters_;                    // per noise (empty for closed forms)
    std::vector<std::unique_ptr<monte_carlo_noise>> mc_;    // per noise (null for closed forms)
    std::uint64_t reports_ = 0;
    bool has_previous_ = false;
    vector_t previous_clean_;
    std::vector<vector_t> previous_noise_;
};

}  // namespace recalign
