// tradeoff: supervised and reconstruction losses at the optimum of Theorem 1, per lambda.
#include <cmath>

#include "commands.hpp"
#include "paths.hpp"
#include "render.hpp"
#include "route_state.hpp"
#include "validate.hpp"

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
    needs.analysis = analysis::tradeoff;
    const prepared_run p = prepare_run(o.data, o.run, needs);
    if (o.k == 0 || o.k > p.dim())
        throw std::invalid_argument("--k must lie in [1, " + std::to_string(p.dim()) + "] (D = " +
                                    std::to_string(p.dim()) + "), got " + std::to_string(o.k));
    opt.k = o.k;
    route_state state(p.config());
    tradeoff_cli_result r;
    r.run = stream(state, p, mpi);
    r.t = tradeoff(finish_statistics(state, p.center, false), opt);
    emit(r, render_options{o.run.json, o.run.quiet, o.run.out});
    return 0;
}

}  // namespace recalign::cli
