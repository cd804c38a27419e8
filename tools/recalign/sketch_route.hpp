// What align, tradeoff and denoise share on a sketch route (--method fd|nystrom): whether the
// run verifies (--verify, the default, costs one more pass over the data: MATH.md §7), the
// refusals known before reading, and the description of the numbers printed.
#pragma once

#include <cstdint>

#include "mpi_context.hpp"
#include "options.hpp"
#include "recalign/align/verification.hpp"
#include "recalign/align/verified_memory.hpp"
#include "results.hpp"
#include "validate.hpp"

namespace recalign::cli {

// A sketch route reading data without --no-verify (--from has no data to verify on).
bool wants_verification(const run_options& r);

// Refuses, before any data is read: the
// memory of a verification pass on `columns` directions (plus `extra` bytes: patch blocks):
// recalign/align/verified_memory.hpp gives both for each analysis. Returns whether the
// finished sketch's state and basis wait on disk through the verification passes
// (verify_plan::park): for a `parkable` run (align, spectrum, project, tradeoff; denoise parks
// by its own model) in one process, when $TMPDIR has room for them (parked_route_size;
// otherwise they stay in memory, as counted then). The memory refused is that of the sketch
// passes or of the verification passes, whichever is larger.
bool check_verification(const run_options& r, const prepared_run& p, const mpi_context& mpi, std::uint64_t columns,
                        long double extra, bool parkable);

// The exact route's finish_choices (validate.hpp) on a verified run: `sketch` (the run's
// sketch statistics) and `pass` (its verification pass) get the raw targets of --center
// inputs / --measure published (one-hot Syy uncentered, MATH.md §8) and --standardize
// global's 1/σ, σ from the sketch's exact trace and mean (Vᵀ Sxx V and Sxx V by 1/σ², Vᵀ Sxy
// by 1/σ: the basis and its span are unchanged). Returns the factor of the second moments.
double verified_choices(statistics& sketch, restricted_statistics& pass, const prepared_run& p);

// The sketch's own error information; `ritz`: the verification pass's exact Ritz values and
// residuals (null: the numbers are estimates read off the sketch's eigenvalues).
sketch_verification describe_sketch(const spectrum& sketch, const ritz_alignment_result* ritz, std::size_t columns,
                                    std::size_t passes);
// The same from the Ritz values and residuals alone (spectrum: no labels, no curve).
sketch_verification describe_sketch(const spectrum& sketch, const vector_t& ritz_values, const vector_t& residuals,
                                    std::size_t columns, std::size_t passes);

// The sketch passes run (of --passes at most) and, with --tolerance, what it was compared with.
void note_sketch_passes(sketch_verification& v, const statistics& sketch, const run_config& c,
                        std::uint64_t sketch_passes);
void note_sketch_passes(sketch_verification& v, const spectrum& sketch, const run_config& c, std::uint64_t sketch_passes);

// align, spectrum and project on a sketch route: the run streamed through a verification pass
// on the sketch's own top-r basis (MATH.md §7 "Alignment curve from a sketch"), with the
// run's finishing choices (verified_choices) applied to the sketch's statistics and the pass's.
struct own_basis_run {
    run_state run;
    statistics sketch;
    restricted_statistics pass;
    std::uint64_t sketch_passes = 0;
    std::vector<double> pass_seconds;
};
// `park`: check_verification's answer.
own_basis_run verify_own_basis(const prepared_run& p, const mpi_context& mpi, bool park);

// denoise on a sketch route (denoise_sketch.cpp): the noises of `t` (closed forms) through
// the sketch, the exact patch blocks and one verification pass.
denoise_result denoise_on_sketch(const denoise_cli_options& o, const prepared_run& run, const tracker_options& t,
                                 const mpi_context& mpi);

// What a sketch route's run says on stderr besides its results (not with --quiet): "recalign:
// wall seconds per pass: ..." (timings stay out of the results, which are identical run to run)
// and a note when the refinement's budget ended its passes before the stop rule fired.
void note_sketch_run(const sketch_verification& v, bool quiet);

// The help line of --verify / --no-verify.
extern const char* verify_help;

}  // namespace recalign::cli
