// spectrum: eigenvalues and explained fractions of the second moment (centered by default).
#include "commands.hpp"
#include "memory_trace.hpp"
#include "paths.hpp"
#include "render.hpp"
#include "route_state.hpp"
#include "validate.hpp"

namespace recalign::cli {

int cmd_spectrum(const spectrum_options& o, const mpi_context& mpi) {
    if (!o.run.out.empty()) require_output_dir("--out", o.run.out, output_files("spectrum"));
    run_needs needs;
    needs.command = "spectrum";
    needs.default_centered = true;
    needs.analysis = analysis::spectrum;
    needs.exact_matrices = 2;  // eigenvalues alone (finish_spectrum: in the moments' storage)
    const prepared_run p = prepare_run(o.data, o.run, needs);
    route_state state(p.config());
    spectrum_result r;
    r.run = stream(state, p, mpi);
    memory_mark("streamed");  // RECALIGN_MEMORY_TRACE: the next line's peak is the eigenvalues'
    r.spec = finish_spectrum(std::move(state), p.center);
    memory_mark("finished");
    emit(r, render_options{o.run.json, o.run.quiet, o.run.out});
    return 0;
}

}  // namespace recalign::cli
