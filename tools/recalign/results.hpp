// What each command computes, as plain structs: the commands (cmd_*.cpp) fill them, the
// renderers (render_*.cpp) turn them into text, JSON, CSV files, charts and PNG grids.
// Nothing here prints or writes.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "recalign/align/alignment.hpp"
#include "recalign/align/noise.hpp"
#include "recalign/align/tracker.hpp"
#include "recalign/align/tradeoff.hpp"
#include "recalign/io/source.hpp"
#include "recalign/spectral/spectrum.hpp"
#include "run_state.hpp"

namespace recalign::cli {

// Where and how a command's result goes.
struct render_options {
    bool json = false, quiet = false;
    std::string out;  // directory for CSV and charts (empty: none)
};

// How the numbers of a sketch route were obtained (absent on the exact route): with the
// verification pass they are exact for the returned subspaces; without it, estimates read off
// the sketch's eigenvalues. Either way the sketch's own error information comes with them.
struct sketch_verification {
    bool verified = false;
    std::string method;                   // fd | nystrom
    std::string test_matrix;              // nystrom: signs | sparse (--test-matrix); empty for fd
    std::size_t rank = 0;                 // eigenpairs of the sketch used
    std::size_t columns = 0;              // of the verification pass's basis
    std::size_t extra_passes = 0;         // verification passes over the data
    double error_bound = std::numeric_limits<double>::quiet_NaN();     // FD: ‖C − Ĉ‖₂ <= bound
    double error_estimate = std::numeric_limits<double>::quiet_NaN();  // Nyström: estimate of ‖C − Ĉ_r‖_F
    // --tolerance (Nyström): the sketch passes run of at most max_passes, T (NaN: not given) and
    // the relative estimate ‖C − Ĉ_r‖_F / tr(C) it was compared with.
    std::size_t sketch_passes = 1, max_passes = 1;
    double tolerance = std::numeric_limits<double>::quiet_NaN();
    double relative_estimate = std::numeric_limits<double>::quiet_NaN();
    vector_t residuals;  // verified: ‖Sxx y_j − θ_j y_j‖ of the returned vectors y_j (exact)
    vector_t ritz_values;  // verified: θ_j = y_jᵀ Sxx y_j (exact)
    std::vector<double> pass_seconds;  // wall time of each pass in this process (timing, not a result)
    // denoise --refine N (a budget): refinement passes run, whether the stopping rule ended them
    // (else the budget), the last change of the stopping curves compared, the ESTIMATE from the
    // last two changes of their distance to the passes' limit (refinement_estimate) and the
    // threshold the rule compares it with.
    bool refines = false;
    std::size_t refine_budget = 0, refine_passes = 0;
    bool refine_converged = false;
    double refine_change = std::numeric_limits<double>::quiet_NaN();
    double refine_estimate = std::numeric_limits<double>::quiet_NaN();
    double refine_threshold = std::numeric_limits<double>::quiet_NaN();
    // Each restart's change and estimate in turn (the last are refine_change / refine_estimate;
    // inf: not judged yet; NaN: a restart of before the resume of an older checkpoint).
    std::vector<double> refine_changes, refine_estimates;
};

struct align_result {
    run_state run;
    alignment_result curve;
    spectrum spec;
    std::optional<sketch_verification> sketch;
};

struct spectrum_result {
    run_state run;
    spectrum spec;  // verified: the Ritz values of the returned directions and their explained fractions
    std::optional<sketch_verification> sketch;  // sketch routes
};

// An 8-bit image grid: rows x cols images, each height x width x channels (1 or 3) in
// [0, 255], HWC, with `gap` white pixels around each image, magnified by `zoom`.
struct image_grid {
    std::size_t rows = 0, cols = 0, height = 0, width = 0, channels = 1, zoom = 1, gap = 2;
    std::vector<std::vector<unsigned char>> cells;  // rows * cols images, row-major
    std::size_t pixel_width() const { return cols * width * zoom + (cols + 1) * gap; }
    std::size_t pixel_height() const { return rows * height * zoom + (rows + 1) * gap; }
};

struct project_result {
    run_state run;
    std::uint64_t n = 0;
    std::size_t dim = 0, k = 0, images = 0;
    centering center = centering::centered;
    double variance = 0.0, explained = 0.0;
    std::vector<std::string> rows;  // "original", "top", "bottom"
    std::string png;
    image_grid grid;
    bool verified = false;  // a sketch route's k and explained from the verification pass's Ritz values
};

// tradeoff on a sketch route: the preconditioned CG passes towards Sxx⁻¹ Sxy (--refine).
struct tradeoff_refinement {
    std::size_t passes = 0, max_passes = 0;  // verification passes run, and the most (1 + --refine)
    bool stopped = false;                    // the adaptive stop ended the run before max_passes
    double residual = 0.0;  // ‖Sxy − Sxx X‖_F / ‖Sxy‖_F on the last span (exact)
    double estimate = std::numeric_limits<double>::quiet_NaN();  // tr(Rᵀ Ĝ⁻¹ R) / λ=0 loss: an estimate
};

struct tradeoff_cli_result {
    run_state run;
    tradeoff_result t;
    std::optional<tradeoff_refinement> refinement;
    std::optional<sketch_verification> sketch;  // losses of the returned V: upper bounds on the optimum
};

struct denoise_result {
    run_state run;
    std::size_t dim = 0, classes = 0;
    centering center = centering::uncentered;
    alignment_measure measure = alignment_measure::paper;
    tracker_report report;
    std::vector<std::size_t> ks;  // rows of the text table
    std::optional<sketch_verification> sketch;
};

struct merge_result {
    std::size_t inputs = 0, segments = 0;
    std::uint64_t n = 0;
    bool moments = false;  // library moment checkpoints (else run checkpoints)
    std::string output;
    std::vector<std::string> notes;  // partial inputs, a replaced output (stderr)
};

struct info_segment {
    std::string images, labels, format, decoding;
    std::vector<std::string> class_names;
    std::vector<io::skipped_file> skipped;  // --skip-unreadable
    std::uint64_t images_bytes = 0, images_hash = 0, first_row = 0, rows_total = 0, rows_done = 0, batch = 0, pass = 0;
};

struct info_result {
    std::string file, kind;
    std::uint32_t version = 0;
    std::uint64_t dim = 0, aux = 0, config_hash = 0, payload_bytes = 0, file_bytes = 0, n = 0;
    bool run = false;  // a CLI run checkpoint: the fields below are set
    std::string command, method, test_matrix;  // test_matrix: nystrom runs only
    std::uint64_t classes = 0, rank = 0, passes = 0, seed = 0;
    bool has_classes = false;  // moment checkpoints report their classes too
    double scale = 1.0;
    bool complete = true;
    std::vector<info_segment> segments;
    // Where a run stands (fill_run): its sketch passes (--passes), its verification passes
    // (0 without --verify; unknown in checkpoints written before they were recorded), the rows
    // read in each pass (all segments), and whether the numbers it returns exist yet.
    bool verified = false, passes_known = true;
    std::uint64_t verification_passes = 0;
    // An adaptive stop ended the verification passes: verification_passes counts those read, of
    // at most planned_verification_passes.
    bool refinement_stopped = false;
    std::uint64_t planned_verification_passes = 0;
    std::vector<std::uint64_t> rows_per_pass;
    std::string pending;  // what is left to run (empty: nothing), and how
};

}  // namespace recalign::cli
