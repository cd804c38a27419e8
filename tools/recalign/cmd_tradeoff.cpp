// tradeoff: supervised and reconstruction losses at the optimum of Theorem 1, per lambda.
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
    if (!o.run.out.empty()) require_output_dir("--out", o.run.out);
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
    {
        const verification_size v = tradeoff_verification(p.dim(), classes, o.run.rank);
        check_verification(o.run, p, mpi, v.columns, v.extra);
    }
    if (verify) {
        // Two passes: on span(U, Sxy), then on span(U, Sxy, Sxx Sxy) with Sxx Sxy from the first.
        verify_plan plan;
        plan.center = p.center;
        plan.passes = 2;
        // The exact diagonal of Sxx (blocks of one coordinate): the preconditioned directions.
        patch_blocks_options diag;
        diag.shape = {p.dim(), 1, 1, image_layout::hwc};
        plan.blocks.push_back(diag);
        plan.basis = [](const statistics& s, const std::vector<patch_blocks>& blocks, restricted_statistics* previous) {
            vector_t d = xt::zeros<double>({s.dim});
            for (std::size_t b = 0; b < blocks[0].blocks(); ++b)
                d(blocks[0].indices(b)[0]) = blocks[0].block(b, s.center)(0, 0);
            return tradeoff_ritz_basis(s, previous, &d);
        };
        verified_state state(p.config(), plan);
        r.run = stream(state, p, mpi);
        statistics s = state.sketch();
        restricted_statistics pass = state.verified();
        verified_choices(s, pass, p);
        r.t = ritz_tradeoff(pass, s.spec.total, opt);
        const ritz_alignment_result ritz = ritz_alignment(pass);
        r.sketch = describe_sketch(s, &ritz, pass.k(), plan.passes);
        note_sketch_passes(*r.sketch, s, p.config(), state.sketch_passes());
        r.sketch->pass_seconds = state.pass_seconds();
        note_pass_seconds(*r.sketch, o.run.quiet);
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
