// align: the alignment curve of the top-k principal subspace with the labels (Eq. 7).
#include "commands.hpp"
#include "memory_trace.hpp"
#include "paths.hpp"
#include "render.hpp"
#include "route_state.hpp"
#include "sketch_route.hpp"
#include "validate.hpp"
#include "verified_state.hpp"

namespace recalign::cli {

namespace {

align_result compute(const prepared_run& p, alignment_options opt, const mpi_context& mpi) {
    route_state state(p.config());
    align_result r;
    r.run = stream(state, p, mpi);
    memory_mark("streamed");  // RECALIGN_MEMORY_TRACE: the next line's peak is the finish's
    const std::uint64_t passes = state.sketch_passes();  // the exact state is consumed by its finish
    statistics s = finish_choices(finish_statistics(std::move(state), p.center), p);
    memory_mark("finished");
    r.curve = alignment_curve(s, opt);
    memory_mark("analyses");
    if (s.method != route::exact) {
        r.sketch = describe_sketch(s.spec, nullptr, 0, 0);
        note_sketch_passes(*r.sketch, s, p.config(), passes);
    }
    r.spec = std::move(s.spec);  // not a copy: at high D the exact basis is D x D
    return r;
}

// A sketch route with the verification pass on the sketch's own top-r basis: the curve of
// its Ritz vectors, exact for them (MATH.md §7 "Alignment curve from a sketch").
align_result compute_verified(const prepared_run& p, alignment_options opt, const mpi_context& mpi, bool park) {
    own_basis_run v = verify_own_basis(p, mpi, park);
    const ritz_alignment_result ritz = ritz_alignment(v.pass, opt);
    align_result r;
    r.run = std::move(v.run);
    r.curve = ritz.curve;
    r.curve.method = v.sketch.method;
    r.spec = v.sketch.spec;
    r.sketch = describe_sketch(v.sketch.spec, &ritz, v.pass.k(), 1);
    note_sketch_passes(*r.sketch, v.sketch, p.config(), v.sketch_passes);
    r.sketch->pass_seconds = v.pass_seconds;
    note_sketch_run(*r.sketch, p.drive.quiet);
    return r;
}

}  // namespace

int cmd_align(const align_options& o, const mpi_context& mpi) {
    alignment_options opt;
    opt.measure = parse_measure(o.measure);
    if (!o.run.out.empty()) require_output_dir("--out", o.run.out, output_files("align"));
    run_needs needs;
    needs.command = "align";
    needs.labels = true;
    needs.analysis = analysis::alignment;
    needs.default_raw_targets = opt.measure == alignment_measure::published;
    const prepared_run p = prepare_run(o.data, o.run, needs);
    const bool park = check_verification(o.run, p, mpi, alignment_verification(o.run.rank).columns, 0, true);
    const align_result r = wants_verification(o.run) ? compute_verified(p, opt, mpi, park) : compute(p, opt, mpi);
    emit(r, render_options{o.run.json, o.run.quiet, o.run.out});
    return 0;
}

}  // namespace recalign::cli
