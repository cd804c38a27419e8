#include "sketch_route.hpp"

#include <cstdio>
#include <string>

#include "paths.hpp"

namespace recalign::cli {

const char* verify_help =
    "Sketch routes (--method fd|nystrom): one more pass over the data evaluates the subspaces found exactly, so every "
    "number printed is exact for what is returned (default; --no-verify skips the pass and prints estimates read off "
    "the sketch's eigenvalues, which can be inflated). Costs one more read of the data (tradeoff: two; denoise with a "
    "masking noise: 1 + --refine, default 9) and about 3 D doubles of memory per verified direction "
    "(the sketch's rank, plus as many and 64 more per masking noise in denoise)";

bool wants_verification(const run_options& r) { return r.method != "exact" && !r.no_verify && r.from.empty(); }

void check_verification(const run_options& r, const prepared_run& p, const mpi_context& mpi, std::uint64_t columns,
                        std::uint64_t extra) {
    if (r.verify && !r.from.empty())
        throw user_error("--verify reads the data again, and --from " + r.from +
                         " reads none: pass --images instead of --from, or drop --verify");
    if (!wants_verification(r)) return;
    if (p.raw_targets || p.standardize)
        throw user_error(std::string("the verification pass of a sketch route evaluates centered or uncentered "
                                     "statistics as streamed: ") +
                         (p.raw_targets ? "--measure published / --center inputs (raw targets)" : "--standardize global") +
                         " is not supported with it yet; pass --no-verify, or use --method exact");
    for (const std::string& f : p.input.source.images)
        if (is_pipe(f))
            throw user_error("--images " + f + " is a pipe, read once: the verification pass of --method " + r.method +
                             " would read it again; pass --no-verify (the sketch's estimate, labelled as such)");
    if (mpi.active())
        throw user_error("--verify under mpirun is not supported yet (each rank would verify its own shard's sketch): "
                         "pass --no-verify, or run without mpirun");
    // The pass holds Sxx V (D x K) and its finished copy, and the analyses a rotated copy.
    const long double bytes = 3.0L * 8.0L * static_cast<long double>(p.dim()) * static_cast<long double>(columns) +
                              static_cast<long double>(extra);
    const long double cap = 18446744073709551615.0L;
    require_memory(p.config(), static_cast<std::uint64_t>(bytes < cap ? bytes : cap), "the verification pass");
}

sketch_verification describe_sketch(const statistics& sketch, const ritz_alignment_result* ritz, std::size_t columns,
                                    std::size_t passes) {
    sketch_verification v;
    v.method = route_name(sketch.method);
    v.rank = sketch.spec.rank();
    v.error_bound = sketch.spec.error_bound;
    v.error_estimate = sketch.spec.error_estimate;
    if (!ritz) return v;
    v.verified = true;
    v.columns = columns;
    v.extra_passes = passes;
    v.residuals = ritz->residuals;
    v.ritz_values = ritz->curve.eigenvalues;
    return v;
}

void note_pass_seconds(const sketch_verification& v, bool quiet) {
    if (quiet || v.pass_seconds.empty()) return;
    std::string s;
    for (double t : v.pass_seconds) s += (s.empty() ? "" : ", ") + std::to_string(t);
    std::fprintf(stderr, "recalign: wall seconds per pass (sketch passes, then %zu verification pass(es)): %s\n",
                 v.extra_passes, s.c_str());
}

}  // namespace recalign::cli
