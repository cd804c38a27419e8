// align: the alignment curve of the top-k principal subspace with the labels (Eq. 7).
#include "commands.hpp"
#include "paths.hpp"
#include "render.hpp"
#include "route_state.hpp"
#include "validate.hpp"

namespace recalign::cli {

namespace {

align_result compute(const prepared_run& p, alignment_options opt, const mpi_context& mpi) {
    route_state state(p.config());
    align_result r;
    r.run = stream(state, p, mpi);
    statistics s = finish_statistics(state, p.center, false);
    r.curve = alignment_curve(s, opt);
    r.spec = std::move(s.spec);
    return r;
}

}  // namespace

int cmd_align(const align_options& o, const mpi_context& mpi) {
    alignment_options opt;
    opt.measure = parse_measure(o.measure);
    if (!o.run.out.empty()) require_output_dir("--out", o.run.out);
    run_needs needs;
    needs.command = "align";
    needs.labels = true;
    needs.analysis = analysis::alignment;
    const prepared_run p = prepare_run(o.data, o.run, needs);
    const align_result r = compute(p, opt, mpi);
    emit(r, render_options{o.run.json, o.run.quiet, o.run.out});
    return 0;
}

}  // namespace recalign::cli
