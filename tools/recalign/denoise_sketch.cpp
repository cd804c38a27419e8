// denoise on a sketch route (MATH.md §7): the sketch and, for every patch geometry of the
// masking noises (dropout: 1x1), the exact patch blocks in the sketch passes; then the
// sketched denoising subspace of every noise, and a verification pass on
// span(U, V_1, ..., V_m). With a masking noise, --refine more passes, each on U,
// every masking noise's Ritz vectors from the previous pass and the preconditioned residuals
// of its first `refined` ones (denoising_refinement): every curve, relative difference and
// impact is computed from the last pass, exactly for the subspaces returned.
// Monte-Carlo noises (draws > 0) sketch the corrupted samples instead (monte_carlo_state.hpp):
// their Ritz problem is solved on each verification pass's span, exactly for the draws made.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>

#include "commands.hpp"
#include "memory_trace.hpp"
#include "monte_carlo_state.hpp"
#include "route_state.hpp"
#include "sketch_route.hpp"
#include "verified_state.hpp"
#include "recalign/align/sketch_denoising.hpp"
#include "recalign/core/checked.hpp"
#include "recalign/core/errors.hpp"
#include "recalign/io/spill.hpp"

namespace recalign::cli {

namespace {

// The patch geometry a noise's blocks need (none for Gaussian noise).
std::optional<patch_blocks_options> geometry(const noise_spec& n, const image_shape& shape) {
    if (n.family == noise_family::gaussian || n.draws > 0) return std::nullopt;
    patch_blocks_options o;
    o.shape = n.shape.empty() ? shape : n.shape;
    o.patch_h = n.family == noise_family::mask ? n.patch_h : 1;
    o.patch_w = n.family == noise_family::mask ? n.patch_w : 1;
    return o;
}

// Ritz vectors of each masking noise refined by the second pass: the accuracy targets
// are for K <= 64; each costs 3 D doubles (check_verification).
constexpr std::size_t refined = denoising_refined_vectors;
// Refinement passes after the first verification pass (--refine): each restarts on span(U,
// the Ritz vectors of every masking noise, their corrections), so the space, and the memory,
// stay those of the first pass plus `refined` columns per masking noise. Measured (K <= 64,
// largest error of the relative difference): 24x24x3 synthetic, 8000 rows, 2x2 p = .5:
// 3.3e-3 after two steps, 3.3e-4 after four; 32x32x3, 12000 rows, 2x2 p = .5: 2.4e-2 after
// two, 5.6e-3 after four, 1.0e-4 after eight (the default); Fashion-MNIST, 20000 images: the
// normalised impact's error 1.3e-2 after one step, 3.3e-3 after two.

// A basis built in place (no D x m copy per extension, docs/benchmarks-log.md "The first basis
// construction in place"): U copied into a D x width matrix whose remaining columns `extend`
// fills (returning the columns used), trimmed when dependent directions were left out.
template <class Extend>
matrix_t in_place_basis(const matrix_t& u, std::size_t width, Extend extend) {
    const std::size_t d = u.shape(0), r = u.shape(1);
    matrix_t q = xt::zeros<double>({d, width});
    for (std::size_t i = 0; i < d; ++i) std::copy(&u(i, 0), &u(i, 0) + r, &q(i, 0));
    const std::size_t m = extend(q, r);
    memory_mark("extended");
    if (m == width) return q;  // moved (a conditional expression would copy it)
    return leading_columns_of(q, m);
}

bool same(const patch_blocks_options& a, const patch_blocks_options& b) {
    return a.shape.height == b.shape.height && a.shape.width == b.shape.width && a.shape.channels == b.shape.channels &&
           a.shape.layout == b.shape.layout && a.patch_h == b.patch_h && a.patch_w == b.patch_w;
}

}  // namespace

denoise_result denoise_on_sketch(const denoise_cli_options& o, const prepared_run& run, const tracker_options& t,
                                 const mpi_context& mpi) {
    // Which blocks each noise reads (-1: none), one accumulator per distinct geometry.
    verify_plan plan;
    plan.center = run.center;
    std::vector<long> block_of;
    for (const noise_spec& n : t.noises) {
        const std::optional<patch_blocks_options> g = geometry(n, t.shape);
        long index = -1;
        if (g) {
            for (std::size_t i = 0; i < plan.blocks.size(); ++i)
                if (same(plan.blocks[i], *g)) index = static_cast<long>(i);
            if (index < 0) {
                index = static_cast<long>(plan.blocks.size());
                plan.blocks.push_back(*g);
            }
        }
        block_of.push_back(index);
    }
    // Monte-Carlo noises: a sketch of l columns each (G Ω, Bs Ω, Bsᵀ Ω), 3 l more verified
    // directions each, their products on the verification basis.
    std::vector<noise_spec> monte_carlo;
    std::vector<long> monte_carlo_of;
    const std::size_t mc_columns = static_cast<std::size_t>(std::min<std::uint64_t>(run.config().rank + 10, t.dim));
    for (const noise_spec& n : t.noises) {
        monte_carlo_of.push_back(n.draws > 0 ? static_cast<long>(monte_carlo.size()) : -1);
        if (n.draws > 0) monte_carlo.push_back(n);
    }
    if (mpi.active() && !monte_carlo.empty())
        throw user_error("Monte-Carlo noises on a sketch route do not run under mpirun yet (each rank's sketches of "
                         "its corrupted rows would have to be merged before the basis is built): run them in one "
                         "process, or under mpirun with --method exact");
    // The verified directions, the patch blocks, the Monte-Carlo sketches and products, and a
    // refinement step's temporaries; the analyses work in the pass's coordinates (no D x K copy
    // beyond the pass's V and Sxx V): recalign/align/verified_memory.hpp.
    const verification_size size =
        denoising_verification(t.dim, run.config().rank, t.noises, t.shape, o.run.refine.value_or(default_refine) > 0, true);
    check_verification(o.run, run, mpi, size.columns, size.extra, false);  // parks by its own model (below)
    // With refinement passes the finished sketch's state and basis wait on disk too (plan.park):
    // parked_route_size's bound for this route (FD's buffer is 2l = 6K rows; the class means D x C)
    // instead of the Nyström-sized figure in size.spill.
    const long double spill =
        size.spill > 0 ? size.spill - parked_sketch_bytes(t.dim, run.config().rank, 0) + parked_route_size(run.config()).written
                       : 0.0L;
    if (spill > 0 && wants_verification(o.run)) {  // the refinement passes' spill files, before any data is read
        const std::string dir = io::spill_directory();
        const auto bytes = static_cast<std::uint64_t>(std::ceil(spill));
        const std::string why = io::spill_shortfall(dir, bytes);
        if (!why.empty())
            throw user_error("the refinement passes (--refine) keep up to " + std::to_string(bytes) +
                             " bytes (the carried directions, the finished sketch and the restarts' preconditioner factors) in unlinked files in " + dir +
                             " ($TMPDIR): " + why + ": set TMPDIR to a directory with room, or pass --refine 0");
    }
    auto blocks_for = [&](std::size_t i, const std::vector<patch_blocks>& blocks) -> const patch_blocks* {
        return block_of[i] < 0 ? nullptr : &blocks[static_cast<std::size_t>(block_of[i])];
    };
    const std::vector<noise_spec> noises = t.noises;
    plan.passes = plan.blocks.empty() ? 1 : 1 + o.run.refine.value_or(default_refine);
    plan.park = size.spill > 0;
    const std::size_t rank = run.config().rank;
    // With incremental refinement passes, the masks' preconditioner factors (sketched_gram_solve's
    // cache, on disk) are formed with the first basis, where each sketched subspace forms them
    // anyway, and the restarts solve with them from the first on (about 5 s a mask at 224x224x3).
    const bool incremental = monte_carlo.empty() && !plan.blocks.empty() && plan.passes > 1;
    const std::shared_ptr<gram_solve_cache> factors_cache = incremental ? std::make_shared<gram_solve_cache>() : nullptr;
    plan.basis = [noises, blocks_for, rank, factors_cache](const statistics& s, const std::vector<patch_blocks>& blocks,
                                                           restricted_statistics* previous) {
        if (previous) {  // a refinement step: restarted on U, each noise's Ritz vectors and corrections
            previous->products();  // the Ritz steps in the pass's coordinates: no rotated D x K copies
            std::vector<matrix_t> extras;  // each masking noise's Ritz vectors, then their corrections
            std::optional<refinement_factors> factors;  // the pass's own, for every mask
            for (std::size_t i = 0; i < noises.size(); ++i) {
                if (!blocks_for(i, blocks)) continue;
                const ritz_denoising_result v = ritz_denoising(*previous, noises[i], blocks_for(i, blocks));
                const std::size_t k = std::min(rank, v.subspace.informative);
                extras.push_back(leading_columns(v.refined, *previous, k));
                if (!factors) factors = refinement_factors_of(*previous);
                extras.push_back(
                    denoising_refinement(s.spec, *previous, noises[i], blocks_for(i, blocks), refined, v, *factors));
            }
            factors.reset();
            // The previous pass is read no more: its V and Sxx V (2 D x K) go before the next
            // basis is built (the same extensions in the same order: the same bits).
            memory_mark("refinement directions");
            previous->basis = matrix_t();
            previous->sv = matrix_t();
            std::size_t width = s.spec.rank();
            for (const matrix_t& e : extras) width += e.shape(1);
            return in_place_basis(s.spec.basis, width, [&](matrix_t& q, std::size_t m) {
                for (matrix_t& e : extras) m = orthonormal_extension(q, m, std::move(e));
                return m;
            });
        }
        // U, then each closed-form masking noise's sketched subspace, found and released one at
        // a time. Gaussian noise adds nothing (V* = U scaled, Corollary 3.1); Monte-Carlo noises
        // build their Ritz space in monte_carlo_state.
        std::size_t width = s.spec.rank();
        for (std::size_t i = 0; i < noises.size(); ++i)
            if (blocks_for(i, blocks)) width += s.spec.rank();  // at most r informative directions each
        return in_place_basis(s.spec.basis, width, [&](matrix_t& q, std::size_t m) {
            for (std::size_t i = 0; i < noises.size(); ++i) {
                if (!blocks_for(i, blocks)) continue;
                denoising_subspace_result v = sketched_denoising_subspace(
                    s.spec, noises[i], blocks_for(i, blocks), {}, factors_cache.get(), io::spill_directory());
                memory_mark("a sketched denoising subspace");
                if (v.informative < v.basis.shape(1)) v.basis = leading_columns_of(v.basis, v.informative);
                m = orthonormal_extension(q, m, std::move(v.basis));
            }
            return m;
        });
    };
    if (monte_carlo.empty() && !plan.blocks.empty()) {
        // Incremental refinement passes: each reads only the new corrections, with the adaptive
        // stop (recalign/align/incremental_refinement.hpp). Monte-Carlo noises need their
        // products on the whole basis in every pass: they keep full passes (plan.basis).
        refinement_options ro;
        ro.rank = rank;
        ro.count = refined;
        ro.alignment.measure = t.measure;
        plan.restart = [noises, blocks_for, ro, factors_cache](const statistics& s, const std::vector<patch_blocks>& blocks,
                                                               restricted_statistics& previous, const vector_t* before,
                                                               double previous_change) {
            if (!previous.gram_solves) previous.gram_solves = factors_cache;  // the first restart (null: its own)
            std::vector<const patch_blocks*> b;
            for (std::size_t i = 0; i < noises.size(); ++i) b.push_back(blocks_for(i, blocks));
            return denoising_restart(s.spec, previous, noises, b, ro, before, previous_change);
        };
    }
    std::optional<verified_state> closed_forms;
    std::optional<monte_carlo_state> with_monte_carlo;
    if (monte_carlo.empty()) closed_forms.emplace(run.config(), plan);
    else with_monte_carlo.emplace(run.config(), plan, monte_carlo, t.shape, mc_columns);
    denoise_result r;
    r.run = closed_forms ? stream(*closed_forms, run, mpi) : stream(*with_monte_carlo, run, mpi);
    verified_state& state = closed_forms ? *closed_forms : with_monte_carlo->verified();
    // The exact route's tracker takes the raw targets and, masks only (validated), no
    // standardization: their curves are invariant to one global scale.
    statistics s = state.sketch_without_basis();  // describe_sketch reads the eigenvalues and error estimates only
    memory_mark("last verification pass");
    restricted_statistics pass = state.take_verified();
    prepared_run choices = run;
    choices.standardize = false;
    verified_choices(s, pass, choices);
    pass.products();  // every analysis below in the pass's coordinates (m x m products, MATH.md §7)
    alignment_options opt;
    opt.measure = t.measure;
    ritz_alignment_result clean = ritz_alignment(pass, opt);
    r.dim = t.dim;
    r.classes = t.classes;
    r.center = t.center;
    r.measure = t.measure;
    r.report.n = pass.n;
    r.report.clean = clean.curve;
    r.report.clean.method = s.method;
    r.report.clean_change = std::numeric_limits<double>::quiet_NaN();
    // Vᵀ Bd V once per set of blocks (the masks of one patch size share it), as in each restart.
    std::vector<const patch_blocks*> masks;
    for (std::size_t i = 0; i < noises.size(); ++i)
        if (monte_carlo_of[i] < 0 && noises[i].family != noise_family::gaussian)
            masks.push_back(blocks_for(i, state.blocks()));
    know_blocks(pass, masks);
    for (std::size_t i = 0; i < noises.size(); ++i) {
        const long mc = monte_carlo_of[i];
        const verified_denoising_result v =
            mc < 0 ? verified_denoising(clean, pass, noises[i], blocks_for(i, state.blocks()), opt)
                   : verified_denoising(clean, ritz_monte_carlo_denoising(pass, with_monte_carlo->on_basis(mc), opt.rel_tol),
                                        opt);
        tracker_noise_report nr;
        // Exact for the draws made; their Monte-Carlo standard error is not estimated here (null).
        nr.monte_carlo = mc >= 0;
        nr.g_stderr_fro = std::numeric_limits<double>::quiet_NaN();
        nr.spec = to_string(noises[i]);
        nr.denoising = v.denoising;
        nr.impact = v.impact;
        nr.change = std::numeric_limits<double>::quiet_NaN();
        r.report.noises.push_back(std::move(nr));
    }
    const refinement_report refinement = state.refinement();
    r.sketch = describe_sketch(s.spec, &clean, pass.k(), plan.restart ? 1 + refinement.passes : plan.passes);
    if (plan.restart) {
        r.sketch->refines = true;
        r.sketch->refine_budget = static_cast<std::size_t>(refinement.budget);
        r.sketch->refine_passes = static_cast<std::size_t>(refinement.passes);
        r.sketch->refine_converged = refinement.converged;
        r.sketch->refine_change = refinement.change;
        r.sketch->refine_estimate = refinement.estimate;
        r.sketch->refine_changes = refinement.changes;
        r.sketch->refine_estimates = refinement.estimates;
        r.sketch->refine_threshold = refinement_stop;
    }
    note_sketch_passes(*r.sketch, s, run.config(), state.sketch_passes());
    r.sketch->pass_seconds = state.pass_seconds();
    note_sketch_run(*r.sketch, o.run.quiet);
    memory_mark("analyses");
    return r;
}

}  // namespace recalign::cli
