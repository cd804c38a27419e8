#include "sketch_route.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "paths.hpp"
#include "recalign/io/spill.hpp"
#include "route_state.hpp"
#include "verified_state.hpp"

namespace recalign::cli {

const char* verify_help =
    "Sketch routes (--method fd|nystrom): one more pass over the data evaluates the subspaces found exactly, so every "
    "number printed is exact for what is returned (default; --no-verify skips the pass and prints estimates read off "
    "the sketch's eigenvalues, which can be inflated; tradeoff and denoise refuse it). Costs one more read of the data "
    "(tradeoff, and denoise with a masking noise: up to --refine more, at most 21 and 9 by default, fewer when they "
    "stop early) and about 3 D doubles of memory per verified direction (tradeoff 4: each basis is built beside the "
    "last; the directions: the sketch's "
    "rank, plus as many and 128 more per masking noise in denoise, which holds 2 D doubles per direction in a pass and, "
    "between passes, the previous pass with each masking noise's 64 corrections and one's temporaries; a "
    "Monte-Carlo noise adds 3 (rank + 10) directions, 2 D doubles per direction for its products "
    "and 6 D (rank + 10) for its sketch; meanwhile the finished sketch's state waits in $TMPDIR when it has room). "
    "Under mpirun each rank verifies its shard on rank 0's basis of the merged sketch; shards merged with `merge` "
    "are verified by resuming the merged checkpoint (--checkpoint M --resume) with the whole input, in one process or "
    "under mpirun";

bool wants_verification(const run_options& r) { return r.method != "exact" && !r.no_verify && r.from.empty(); }

bool check_verification(const run_options& r, const prepared_run& p, const mpi_context& mpi, std::uint64_t columns,
                        long double extra, bool parkable) {
    // --verify with --from: refused with the other route options (validate.cpp).
    if (!wants_verification(r)) return false;
    for (const std::string& f : p.input.source.images)
        if (is_pipe(f))
            throw user_error("--images " + f + " is a pipe, read once: the verification pass of --method " + r.method +
                             " would read it again; pass --no-verify (the sketch's estimate, labelled as such)");
    // The pass holds Sxx V (D x K) and its finished copy, and the analyses a third D x K (align,
    // spectrum and project work in the pass's coordinates now and hold none: the count stays
    // conservative); it reads the data batch by batch too.
    long double bytes = verification_memory(p.dim(), columns, extra + static_cast<long double>(p.input.batch_bytes));
    // Parked, the sketch's state and basis are on disk through the passes: what they free is
    // not held beside the passes (the sketch passes and the finish, run_memory, still hold it).
    // Under mpirun every rank keeps its own (only rank 0 would park: not worth a second model).
    const parked_size parked = parked_route_size(p.config());
    const bool park = parkable && !mpi.active() && io::spill_shortfall(io::spill_directory(),
                                                                       static_cast<std::uint64_t>(parked.written)).empty();
    if (park) bytes = std::max(bytes - parked.freed, 0.0L);
    const long double cap = 18446744073709551615.0L;
    require_memory(p.config(), static_cast<std::uint64_t>(bytes < cap ? bytes : cap), "the verification pass");
    return park;
}

double verified_choices(statistics& sketch, restricted_statistics& pass, const prepared_run& p) {
    double a2 = 1.0;
    if (p.standardize) {
        const double sigma = global_std(sketch);
        if (!(sigma > 0)) throw std::invalid_argument("--standardize global: the inputs have no variance");
        const double a = 1.0 / sigma;
        a2 = a * a;
        pass.load_sv();  // Sxx V on disk after an incremental refinement: rescaled in memory
        pass.vsv *= a2;
        pass.sv *= a2;
        if (pass.cross) pass.cross->sxy *= a;
    }
    if (p.raw_targets && pass.cross && pass.cross->one_hot() && pass.center == centering::centered)
        pass.cross->center = centering::uncentered;  // Σ (x − μ) yᵀ is the same; Syy = diag(n_c)
    sketch = finish_choices(std::move(sketch), p);
    return a2;
}

own_basis_run verify_own_basis(const prepared_run& p, const mpi_context& mpi, bool park) {
    verify_plan plan;
    plan.center = p.center;
    plan.park = park;
    plan.basis = [](const statistics& s, const std::vector<patch_blocks>&, const restricted_statistics*) {
        return s.spec.basis;
    };
    // The curve's labels come from the pass (Vᵀ Sxy): the sketch is finished without Sxy, C x D
    // beside the class sums (600 rows of 224x224x3, 1,000 classes: 2,487,476 KiB at the peak
    // before, docs/benchmarks-log.md "The fiftieth session").
    plan.basis_reads_labels = false;
    verified_state state(p.config(), plan);
    own_basis_run r;
    r.run = stream(state, p, mpi);
    // The analyses read the pass alone: the sketch's own basis (D x rank) is not read back (its
    // eigenvalues and error estimates are), and with the pass's products the Ritz steps work in
    // its coordinates, without rotated D x K copies of V and Sxx V (Nyström align at 224x224x3,
    // rank 100: 767 -> 465 MB at the peak, docs/benchmarks-log.md "The thirty-fourth session").
    r.sketch = state.sketch_without_basis();
    r.pass = state.take_verified();  // moved out: not a second copy beside the analyses
    verified_choices(r.sketch, r.pass, p);
    r.pass.products();  // after verified_choices' rescaling
    r.sketch_passes = state.sketch_passes();
    r.pass_seconds = state.pass_seconds();
    return r;
}

sketch_verification describe_sketch(const spectrum& sketch, const ritz_alignment_result* ritz, std::size_t columns,
                                    std::size_t passes) {
    sketch_verification v;
    v.method = route_name(sketch.method);
    v.rank = sketch.rank();
    v.error_bound = sketch.error_bound;
    v.error_estimate = sketch.error_estimate;
    if (!ritz) return v;
    return describe_sketch(sketch, ritz->curve.eigenvalues, ritz->residuals, columns, passes);
}

sketch_verification describe_sketch(const spectrum& sketch, const vector_t& ritz_values, const vector_t& residuals,
                                    std::size_t columns, std::size_t passes) {
    sketch_verification v = describe_sketch(sketch, nullptr, 0, 0);
    v.verified = true;
    v.columns = columns;
    v.extra_passes = passes;
    v.residuals = residuals;
    v.ritz_values = ritz_values;
    return v;
}

void note_sketch_passes(sketch_verification& v, const statistics& sketch, const run_config& c,
                        std::uint64_t sketch_passes) {
    note_sketch_passes(v, sketch.spec, c, sketch_passes);
}

void note_sketch_passes(sketch_verification& v, const spectrum& sketch, const run_config& c, std::uint64_t sketch_passes) {
    v.sketch_passes = static_cast<std::size_t>(sketch_passes);
    v.max_passes = static_cast<std::size_t>(c.passes);
    // --test-matrix signs is the library's automatic choice: ±1 signs from D = 64, Gaussian below.
    if (c.method == "nystrom") v.test_matrix = c.test_matrix == "signs" && c.dim < 64 ? "gaussian" : c.test_matrix;
    if (sketch.total > 0.0) v.relative_estimate = sketch.error_estimate / sketch.total;
    if (c.tolerance > 0.0) v.tolerance = c.tolerance;
}

void note_sketch_run(const sketch_verification& v, bool quiet) {
    if (quiet) return;
    std::string s;
    for (double t : v.pass_seconds) s += (s.empty() ? "" : ", ") + std::to_string(t);
    if (!s.empty())
        std::fprintf(stderr, "recalign: wall seconds per pass (sketch passes, then %zu verification pass(es)): %s\n",
                     v.extra_passes, s.c_str());
    // The printed numbers are exact for the subspaces returned either way; what the budget's end
    // leaves open is how far more passes would move them (the JSON's sketch_error.refinement).
    if (!v.refines || v.refine_converged || v.refine_budget == 0) return;
    char how[160];
    if (std::isfinite(v.refine_estimate))
        std::snprintf(how, sizeof how, "the curves may still move by about %.3g (ESTIMATED; the rule stops below %.3g)",
                      v.refine_estimate, v.refine_threshold);
    else if (std::isfinite(v.refine_change))
        std::snprintf(how, sizeof how, "how far the curves may still move cannot be estimated (last change %.3g)",
                      v.refine_change);
    else  // one restart: no earlier curves to compare with (the JSON's change is null)
        std::snprintf(how, sizeof how,
                      "how far the curves may still move cannot be estimated (no change yet: that takes two "
                      "refinement passes)");
    // Where the refinement settles depends on the sketch: at 224x224x3 (10,000 rows, against the
    // exact curves) one Nyström sketch pass settled 2.8e-3 away, two 7.4e-4, and converged in 6
    // refinement passes instead of 9 (BENCHMARKS.md).
    const bool one_pass = v.method == "nystrom" && v.sketch_passes == 1;
    std::fprintf(stderr,
                 "recalign: note: the refinement's budget (--refine %zu) ended the passes before its stop rule fired: "
                 "%s; a larger --refine refines them further%s\n",
                 v.refine_budget, how,
                 one_pass ? ", and a second sketch pass (--passes 2) lets them converge sooner and settle closer to the exact curves" : "");
}

}  // namespace recalign::cli
