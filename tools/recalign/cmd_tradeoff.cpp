// tradeoff: supervised and reconstruction losses at the optimum of Theorem 1, per lambda.
#include <algorithm>
#include <cmath>

#include "commands.hpp"
#include "paths.hpp"
#include "render.hpp"
#include "route_state.hpp"
#include "sketch_route.hpp"
#include "validate.hpp"
#include "verified_state.hpp"

namespace recalign::cli {

int cmd_tradeoff(const tradeoff_cli_options& o, const mpi_context& mpi) {
    tradeoff_options opt;
    opt.lambdas = parse_list(o.lambdas, "--lambda");
    for (double l : opt.lambdas)
        if (!(l >= 0) || !std::isfinite(l))
            throw std::invalid_argument("--lambda: " + std::to_string(l) + " is not a finite number >= 0");
    if (!o.run.out.empty()) require_output_dir("--out", o.run.out, output_files("tradeoff"));
    run_needs needs;
    needs.command = "tradeoff";
    needs.labels = true;
    // A sketch route solves it by Rayleigh–Ritz on the verification passes (MATH.md §7):
    // what the route must provide is then the alignment's (labels, top eigenpairs).
    const bool verify = wants_verification(o.run);
    needs.analysis = verify ? analysis::alignment : analysis::tradeoff;
    const prepared_run p = prepare_run(o.data, o.run, needs);
    if (o.k == 0 || o.k > p.dim())
        throw std::invalid_argument("--k must lie in [1, " + std::to_string(p.dim()) + "] (D = " +
                                    std::to_string(p.dim()) + "), got " + std::to_string(o.k));
    opt.k = o.k;
    tradeoff_cli_result r;
    const std::uint64_t classes = p.config().classes;
    // The preconditioner's exact diagonal blocks of Sxx: runs of `block` consecutive coordinates
    // (an image row's neighbouring pixels and channels; the last run may be shorter).
    const std::uint64_t block = std::min<std::uint64_t>(tradeoff_preconditioner_block, p.dim());
    const std::size_t refine = o.run.refine.value_or(default_tradeoff_refine);
    const verification_size v = tradeoff_verification(p.dim(), classes, o.run.rank, refine, block);
    const bool park = check_verification(o.run, p, mpi, v.columns, v.extra, true);
    if (verify) {
        // A first pass on span(U, Sxy, Ĝ⁻¹ Sxy), then up to --refine passes, each adding Sxx Sxy and
        // the preconditioned exact residual of the previous span's Galerkin solution (block PCG on
        // Sxx W = Sxy, MATH.md §7), until that residual's Ĝ⁻¹-norm is below 1e-4 of the λ = 0 loss.
        verify_plan plan;
        plan.center = p.center;
        plan.passes = 1 + refine;
        plan.park = park;  // each pass's basis reads U back (verified_state::sketch)
        patch_blocks_options diag;
        diag.shape = {p.dim(), 1, 1, image_layout::hwc};
        diag.patch_h = static_cast<std::size_t>(block);
        plan.blocks.push_back(diag);
        plan.basis = [](const statistics& s, const std::vector<patch_blocks>& blocks, restricted_statistics* previous) {
            return tradeoff_ritz_basis(s, previous, blocks[0]);
        };
        tradeoff_refinement cg;
        cg.max_passes = plan.passes;
        // Judged on rank 0 of the merged pass (verified_state::next_pass): mpirun stops where one process does.
        plan.done = [](const statistics& s, const std::vector<patch_blocks>& blocks, const restricted_statistics& pass) {
            return tradeoff_excess_estimate(s, blocks[0], pass).estimate <= tradeoff_stop;
        };
        verified_state state(p.config(), plan);
        r.run = stream(state, p, mpi);
        statistics s = state.sketch();
        restricted_statistics pass = state.take_verified();  // moved out: not a second copy at the peak
        // Before verified_choices rescales the pass.
        const tradeoff_excess excess = tradeoff_excess_estimate(s, state.blocks()[0], pass);
        cg.residual = excess.residual;
        cg.estimate = excess.estimate;
        cg.passes = static_cast<std::size_t>(state.verification_passes());
        cg.stopped = cg.passes < cg.max_passes;
        r.refinement = cg;
        verified_choices(s, pass, p);
        r.t = ritz_tradeoff(pass, s.spec.total, opt);
        const ritz_alignment_result ritz = ritz_alignment(pass);
        r.sketch = describe_sketch(s.spec, &ritz, pass.k(), cg.passes);
        note_sketch_passes(*r.sketch, s, p.config(), state.sketch_passes());
        r.sketch->pass_seconds = state.pass_seconds();
        note_sketch_run(*r.sketch, o.run.quiet);
    } else {
        route_state state(p.config());
        r.run = stream(state, p, mpi);
        opt.solver = solver_memory(p.config());
        r.t = tradeoff(finish_choices(finish_statistics(std::move(state), p.center), p), opt);
    }
    emit(r, render_options{o.run.json, o.run.quiet, o.run.out});
    return 0;
}

}  // namespace recalign::cli
