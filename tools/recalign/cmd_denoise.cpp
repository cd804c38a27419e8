// denoise: alignment of the optimal denoising representation (Theorem 3) against the clean
// curve, and the label-free noise impact, through the alignment tracker: the noise
// expectations (closed form or Monte Carlo) are accumulated in the same pass as the clean
// statistics, and one eigendecomposition of the clean statistics serves every noise.
#include <cstdio>
#include <limits>
#include <numeric>

#include "commands.hpp"
#include "memory_trace.hpp"
#include "paths.hpp"
#include "recalign/align/verified_memory.hpp"
#include "recalign/core/checked.hpp"
#include "recalign/io/spill.hpp"
#include "render.hpp"
#include "sketch_route.hpp"
#include "tracker_state.hpp"
#include "validate.hpp"

namespace recalign::cli {

namespace {

struct denoise_plan {
    prepared_run run;
    tracker_options tracker;
    std::vector<std::size_t> ks;  // empty: the default list
    eigen_options solver;         // what the eigensolvers may add beside `extra` (validate.hpp)
    std::string spill_dir;        // $TMPDIR: where the exact route's idle matrices wait (final_report)
};

image_shape parse_image(const denoise_cli_options& o, std::size_t dim) {
    const std::vector<std::size_t> v = parse_shape(o.image_shape);
    image_shape shape;
    shape.height = v[0];
    shape.width = v[1];
    shape.channels = v[2];
    shape.layout = o.layout == "chw" ? image_layout::chw : image_layout::hwc;
    if (shape.dim() != dim)
        throw std::invalid_argument("--image-shape " + o.image_shape + " has " + std::to_string(shape.dim()) +
                                    " values but the rows have " + std::to_string(dim));
    return shape;
}

// Whether any --noise spec satisfies `f`, before the image shape is known. A spec that does not
// parse counts as none: parse_noises refuses it, naming it.
template <class F>
bool any_spec(const std::vector<std::string>& noises, F&& f) {
    for (const std::string& text : noises) try {
            if (f(parse_noise_spec(text))) return true;
        } catch (const std::invalid_argument&) {
        }
    return false;
}

// A Monte-Carlo spec without its own seed= draws from --seed (parse_noises).
bool reads_seed(const std::vector<std::string>& noises) {
    return any_spec(noises, [](const noise_spec& s) { return s.draws && !s.seed; });
}

// Whether a sketch route would refine a masking noise's subspace (a mask or dropout in closed
// form, verified, --refine not 0): such a run's Nyström sketch takes two passes by default.
bool refines_masking(const denoise_cli_options& o) {
    return o.run.method == "nystrom" && wants_verification(o.run) && o.run.refine.value_or(default_refine) > 0 &&
           o.monte_carlo == 0 &&
           any_spec(o.noises, [](const noise_spec& s) { return s.family != noise_family::gaussian && s.draws == 0; });
}

std::vector<noise_spec> parse_noises(const denoise_cli_options& o, const image_shape& shape) {
    std::vector<noise_spec> specs;
    for (const std::string& text : o.noises) {
        noise_spec s;
        try {
            s = parse_noise_spec(text);
            if (o.monte_carlo) {
                if (s.draws && s.draws != o.monte_carlo)
                    throw std::invalid_argument("it says draws=" + std::to_string(s.draws) + " but --monte-carlo " +
                                                std::to_string(o.monte_carlo) + " was given");
                s.draws = o.monte_carlo;
            }
            if (s.draws && !s.seed) s.seed = o.run.seed;  // its own seed=N, else --seed
            validate(s);
            if (!s.shape.empty() && s.shape.dim() != shape.dim())
                throw std::invalid_argument("its shape has " + std::to_string(s.shape.dim()) + " values but the rows have " +
                                            std::to_string(shape.dim()));
            if (s.family == noise_family::mask) make_patch_map(s.shape.empty() ? shape : s.shape, s.patch_h, s.patch_w);
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument("--noise " + text + ": " + e.what());
        }
        specs.push_back(s);
    }
    return specs;
}

// Every Monte-Carlo noise draws at least 2 corruptions per sample. The exact route's
// Monte-Carlo standard error compares replicate groups of draws: at least 2 groups, all of one
// size, the smallest group count >= 2 dividing every noise's draws. A sketch route estimates no
// standard error (g_stderr_fro null): its noises' draws need no common factor.
std::size_t replicate_groups(const std::vector<noise_spec>& specs, bool exact) {
    for (const noise_spec& s : specs)
        if (s.draws == 1)
            throw std::invalid_argument("--monte-carlo / draws: " + to_string(s) + " draws 1 corruption per sample; "
                                        "Monte Carlo needs at least 2");
    if (!exact) return 2;  // unused
    std::size_t g = 0;
    std::string first;
    for (const noise_spec& s : specs)
        if (s.draws) {
            g = std::gcd(g, s.draws);
            if (first.empty()) first = to_string(s);
        }
    if (g == 0) return 2;  // no Monte-Carlo noise: unused
    for (std::size_t r = 2; r <= g; ++r)
        if (g % r == 0) return r;
    throw std::invalid_argument("--monte-carlo / draws: the Monte-Carlo standard error needs at least 2 corruptions per "
                                "sample, in groups of one size (" + first + " draws " + std::to_string(g) +
                                (specs.size() > 1 ? " in common with the other noises)" : ")"));
}

denoise_plan plan(const denoise_cli_options& o) {
    if (!o.run.out.empty()) require_output_dir("--out", o.run.out, output_files("denoise"));
    denoise_plan p;
    run_needs needs;
    needs.command = "denoise";
    needs.labels = true;
    // A sketch route finds the subspaces from the sketch and the exact patch blocks, and
    // evaluates them in a verification pass (MATH.md §7): it needs what the alignment needs.
    needs.analysis = wants_verification(o.run) ? analysis::alignment : analysis::denoising;
    data_options data = o.data;
    data.layout = o.layout;  // --layout orders decoded images too
    needs.default_raw_targets = o.measure == "published";
    needs.own_layout = true;
    needs.draws = o.monte_carlo > 0 || reads_seed(o.noises);
    needs.default_passes = refines_masking(o) ? 2 : 1;
    p.run = prepare_run(data, o.run, needs);
    // A checkpointed run of a row range may be a shard for `merge`, which takes shards within their
    // first sketch pass only: said before any data is read, where the default chose two.
    if (needs.default_passes > 1 && !o.run.passes && !o.run.checkpoint.empty() && (o.data.skip || o.data.limit) &&
        !o.run.quiet)
        std::fprintf(stderr, "recalign: note: two Nyström sketch passes (a denoise run that refines a masking noise "
                             "takes 2 by default): `merge` takes shards within their first pass only, so run shards "
                             "with --passes 1 (or all the rows under mpirun)\n");
    if (p.run.from && p.run.from->command != "denoise" && p.run.from->command != "merge")
        throw std::invalid_argument("denoise --from needs a checkpoint written by denoise (" + p.run.from_path +
                                    " was written by " + p.run.from->command + ")");
    tracker_options& t = p.tracker;
    t.dim = p.run.dim();
    t.classes = static_cast<std::size_t>(p.run.config().classes);
    t.shape = parse_image(o, t.dim);
    t.noises = parse_noises(o, t.shape);
    t.measure = parse_measure(o.measure);
    t.center = p.run.center;
    t.raw_targets = p.run.raw_targets;
    // The masks' curves are invariant to one global scale; Gaussian sigma is not (it is in the
    // units of the data): refused rather than silently measured in the wrong units.
    for (const noise_spec& s : t.noises)
        if (p.run.standardize && s.family == noise_family::gaussian)
            throw std::invalid_argument("denoise --standardize global with --noise " + to_string(s) +
                                        ": sigma is in the units of the data; give it in those units without "
                                        "--standardize");
    // --refine refines the closed-form subspace of a masking noise (route options: validate.cpp).
    if (o.run.refine) {
        bool masking = false;
        for (const noise_spec& s : t.noises) masking = masking || (s.family != noise_family::gaussian && s.draws == 0);
        if (!masking)
            throw std::invalid_argument("--refine refines a masking noise's subspace, and no --noise is one in closed "
                                        "form (mask or dropout, without --monte-carlo)");
    }
    t.replicates = replicate_groups(t.noises, p.run.config().method == "exact");
    // require_memory counts 3 D x D, the exact route's peak: the final report
    // (alignment_tracker::final_report) forms Sxx in the accumulator's storage and solves every
    // noise but a Gaussian one before the clean eigenvectors exist, with the matrices a
    // decomposition does not read waiting in unlinked files in $TMPDIR: a masking noise (mask,
    // dropout) in Sxx's own triangles (G's factor R), F and C (3 during C = F Fᵀ), then C and
    // dsyevd's 2 D x D with Sxx on disk; each V* waits on disk until Sxx has been decomposed in
    // its storage (dsyevd: 3), then is read back and measured beside U (2). So the 3 D x D hold
    // dsyevd's workspace: it is always taken (solver_memory plus 2 D x D, as align does). A
    // Monte-Carlo noise keeps 2 R replicate sums (R = replicate groups) while streaming, and each
    // batch's update works on a copy of them (strong guarantee): 1 + 4 R per such noise in all;
    // its estimate is formed in the sums' storage (Sxx on disk) and solved as above. On disk at
    // once: one D x D per noise solved (Sxx or a V*), one more while a Monte-Carlo one is solved.
    // (recalign/align/verified_memory.hpp: exact_denoise_extra, which Python's AlignmentTracker
    // refuses with too.)
    const std::uint64_t matrix = checked_mul(checked_mul(t.dim, t.dim, "D x D"), 8, "D x D bytes");
    std::uint64_t solved = 0;
    bool monte_carlo = false;
    for (const noise_spec& s : t.noises) {
        solved += s.draws > 0 || s.family != noise_family::gaussian;
        monte_carlo = monte_carlo || s.draws > 0;
    }
    const std::uint64_t extra = exact_denoise_extra(t.dim, t.noises, t.replicates);
    const std::uint64_t on_disk = checked_mul(matrix, solved + monte_carlo, "denoise spill");
    if (t.center == centering::centered && monte_carlo)
        throw std::invalid_argument("Monte-Carlo noise expectations are uncentered sums: use --no-center with --monte-carlo");
    // A sketch route checks its own memory (denoise_on_sketch: sketches, verification pass).
    if (p.run.config().method == "exact") {
        require_memory(p.run.config(), extra, "denoise");
        p.solver = solver_memory(p.run.config(), extra);
        const std::uint64_t two = checked_mul(matrix, 2, "D x D bytes"), most = std::numeric_limits<std::uint64_t>::max();
        p.solver.workspace_bytes = p.solver.workspace_bytes > most - two ? most : p.solver.workspace_bytes + two;
        p.spill_dir = io::spill_directory();
        require_spill_space(p.spill_dir, on_disk, "denoise: the exact route's idle D x D matrices (Sxx, each V*)");
    }
    if (!o.k_list.empty()) p.ks = parse_k_list(o.k_list, "--k-list", t.dim);
    return p;
}

std::vector<std::size_t> default_k_list(std::size_t max_k) {
    std::vector<std::size_t> ks;
    for (std::size_t k : {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000})
        if (k <= max_k) ks.push_back(k);
    if (max_k && (ks.empty() || ks.back() != max_k)) ks.push_back(max_k);
    return ks;
}

}  // namespace

int cmd_denoise(const denoise_cli_options& o, const mpi_context& mpi) {
    const denoise_plan p = plan(o);
    if (p.run.config().method != "exact") {
        denoise_result r = denoise_on_sketch(o, p.run, p.tracker, mpi);
        r.ks = p.ks.empty() ? default_k_list(r.report.clean.max_k) : p.ks;
        emit(r, render_options{o.run.json, o.run.quiet, o.run.out});
        return 0;
    }
    tracker_state state(p.tracker);  // validates every noise against the image: before any data
    denoise_result r;
    r.run = stream(state, p.run, mpi);
    memory_mark("streamed");
    r.report = std::move(state.tracker()).final_report(p.solver, p.spill_dir);  // the run is streamed and checkpointed
    memory_mark("final report");
    r.dim = p.tracker.dim;
    r.classes = p.tracker.classes;
    r.center = p.tracker.center;
    r.measure = p.tracker.measure;
    r.ks = p.ks.empty() ? default_k_list(r.report.clean.max_k) : p.ks;
    emit(r, render_options{o.run.json, o.run.quiet, o.run.out});
    return 0;
}

}  // namespace recalign::cli
