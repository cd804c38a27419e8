// One object to feed minibatches of (images, class labels) that owns the clean moments and
// any number of noise models (closed form, or Monte Carlo when a spec asks for draws), and
// reports the current curves — clean alignment, denoising alignment, noise impact — with how
// much each changed since the previous report. Checkpoints, resumes and merges as a whole.
#pragma once

#include <cstdint>
#include <istream>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "recalign/align/alignment.hpp"
#include "recalign/align/denoising.hpp"
#include "recalign/align/noise.hpp"
#include "recalign/core/batch.hpp"
#include "recalign/core/checked.hpp"
#include "recalign/core/serial.hpp"
#include "recalign/io/spill.hpp"
#include "recalign/stats/moments.hpp"

namespace recalign {

struct tracker_options {
    std::size_t dim = 0;      // D
    std::size_t classes = 0;  // C (labels are class ids in [0, C))
    image_shape shape;        // geometry of the rows (needed by mask noises without their own shape)
    std::vector<noise_spec> noises;
    alignment_measure measure = alignment_measure::paper;
    centering center = centering::uncentered;  // Monte-Carlo noises need uncentered
    // With center == centered: leave the targets raw (the authors' pipeline, MATH.md §8).
    bool raw_targets = false;
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
    // `solver`: the memory its eigensolvers may add (spectral/eigen.hpp: dsyevd where it fits,
    // else dsyevr): how the report is computed, not what it is.
    tracker_report report(const eigen_options& solver = {});
    // The same report at the end of a run, consuming the accumulator; the tracker is left
    // moved-from. Sxx is formed in the accumulator's storage, every noise that needs a solve
    // is solved beside Sxx alone (a masking noise in Sxx's own triangles: masking_denoising_
    // subspace; a Monte-Carlo one from its sums, consumed: release_estimate), then Sxx is
    // decomposed in its storage and each V* measured and released (the report's
    // subspace.basis is empty). With `spill_dir` (not empty; the CLI's $TMPDIR) the matrices a
    // decomposition does not read wait there in unlinked files (io::parked_matrix): Sxx while a
    // noise's C is decomposed by dsyevd or a Monte-Carlo noise is solved, each V* until the
    // clean eigenvectors exist. Peak then, in D x D: 3 with dsyevd everywhere (C or Sxx and
    // dsyevd's 2), or the sums of the Monte-Carlo noises not yet solved plus 3; on disk at most
    // one D x D per noise solved. Without it: 2 + m for m noises solved, 3 for the first masking
    // one, with dsyevr; one more where dsyevd is taken; a Monte-Carlo noise 2 more while solved.
    tracker_report final_report(const eigen_options& solver = {}, const std::string& spill_dir = {}) &&;

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

    // The checkpoint payload (recalign/core/serial.hpp), defined in lib/align/tracker_serial.cpp.
    template <class Archive>
    void save_payload(Archive& ar) const;
    template <class Archive>
    static alignment_tracker load_payload(Archive& ar, checkpoint::budget& b);

private:
    void check_loaded() const;
    // V* found before the clean decomposition (final_report), with its Monte-Carlo errors.
    struct solved_noise {
        denoising_subspace_result sub;  // its basis empty while parked
        std::unique_ptr<io::parked_matrix> basis;  // V* waiting on disk (final_report's spill_dir)
        double bs_stderr_fro = 0.0, g_stderr_fro = 0.0;
    };
    // `solved`: per noise (empty where it is solved here); measured and released.
    tracker_report report_on(const statistics& clean, const eigen_options& solver,
                             std::vector<std::optional<solved_noise>>* solved = nullptr);

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
