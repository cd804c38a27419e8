// spectrum: eigenvalues and explained fractions of the second moment (centered by default).
#include "commands.hpp"
#include "memory_trace.hpp"
#include "paths.hpp"
#include "render.hpp"
#include "route_state.hpp"
#include "sketch_route.hpp"
#include "validate.hpp"

namespace recalign::cli {

namespace {

spectrum_result compute(const prepared_run& p, const mpi_context& mpi) {
    route_state state(p.config());
    spectrum_result r;
    r.run = stream(state, p, mpi);
    memory_mark("streamed");  // RECALIGN_MEMORY_TRACE: the next line's peak is the eigenvalues'
    const bool sketch = state.config().method != "exact";
    const std::uint64_t passes = state.sketch_passes();  // the state is consumed by its finish
    r.spec = finish_spectrum(std::move(state), p.center);
    memory_mark("finished");
    if (sketch) {  // estimates (--no-verify, --from): labelled
        r.sketch = describe_sketch(r.spec, nullptr, 0, 0);
        note_sketch_passes(*r.sketch, r.spec, p.config(), passes);
    }
    return r;
}

// A sketch route with the verification pass on the sketch's own top-r basis (as align's):
// the Ritz values of the returned directions, each the exact second moment along its
// direction and at most the true eigenvalue of its rank, with their residuals; the explained
// fractions and direction counts are then exact for the returned subspaces.
spectrum_result compute_verified(const prepared_run& p, const mpi_context& mpi, bool park) {
    own_basis_run v = verify_own_basis(p, mpi, park);
    ritz_spectrum_result ritz = ritz_spectrum(v.sketch.spec, v.pass, false);  // the table reads values only
    spectrum_result r;
    r.run = std::move(v.run);
    r.spec = std::move(ritz.spec);
    r.sketch = describe_sketch(v.sketch.spec, r.spec.eigenvalues, ritz.residuals, v.pass.k(), 1);
    note_sketch_passes(*r.sketch, v.sketch, p.config(), v.sketch_passes);
    r.sketch->pass_seconds = v.pass_seconds;
    note_sketch_run(*r.sketch, p.drive.quiet);
    return r;
}

}  // namespace

int cmd_spectrum(const spectrum_options& o, const mpi_context& mpi) {
    if (!o.run.out.empty()) require_output_dir("--out", o.run.out, output_files("spectrum"));
    run_needs needs;
    needs.command = "spectrum";
    needs.default_centered = true;
    needs.analysis = analysis::spectrum;
    needs.exact_matrices = 2;  // eigenvalues alone (finish_spectrum: in the moments' own storage)
    const prepared_run p = prepare_run(o.data, o.run, needs);
    const bool park = check_verification(o.run, p, mpi, alignment_verification(o.run.rank).columns, 0, true);
    const spectrum_result r = wants_verification(o.run) ? compute_verified(p, mpi, park) : compute(p, mpi);
    emit(r, render_options{o.run.json, o.run.quiet, o.run.out});
    return 0;
}

}  // namespace recalign::cli
