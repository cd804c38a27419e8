// project: the paper's Figure 9 grid: images, their projections on the top subspace
// (explaining --variance of the total) and on its complement (MATH.md §5).
#include <cmath>

#include "commands.hpp"
#include "paths.hpp"
#include "recalign/core/blas.hpp"
#include "recalign/core/checked.hpp"
#include "recalign/spectral/subspace.hpp"
#include "render.hpp"
#include "route_state.hpp"
#include "sketch_route.hpp"
#include "validate.hpp"

namespace recalign::cli {

namespace {

struct project_plan {
    prepared_run run;
    std::vector<std::size_t> shape;  // H, W, C
    std::size_t count = 0;           // images in the grid: --count, at most the rows read
    bool top = true, bottom = true, chw = false;
    bool park = false;  // the sketch waits on disk through the verification pass (check_verification)
};

// Everything checked before reading: the shape against D, the grid's pixel size, the output.
project_plan plan(const project_options& o, const mpi_context& mpi) {
    project_plan p;
    p.shape = parse_shape(o.image_shape);
    if (p.shape[2] != 1 && p.shape[2] != 3) throw std::invalid_argument("--image-shape: C must be 1 (gray) or 3 (RGB)");
    if (!(o.variance >= 0 && o.variance <= 1)) throw std::invalid_argument("--variance must lie in [0, 1]");
    if (o.count == 0) throw std::invalid_argument("--count must be at least 1");
    require_writable_parent("--out", o.run.out);
    run_needs needs;
    needs.command = "project";
    needs.default_centered = true;
    needs.from_allowed = false;
    needs.analysis = analysis::projection;
    needs.own_layout = true;
    data_options data = o.data;
    data.layout = o.layout;  // --layout orders decoded images too
    p.run = prepare_run(data, o.run, needs);
    p.park = check_verification(o.run, p.run, mpi, alignment_verification(o.run.rank).columns, 0, true);
    const std::size_t values = checked_product(p.shape.begin(), p.shape.end(), "--image-shape H x W x C");
    if (values != p.run.dim())
        throw std::invalid_argument("--image-shape " + o.image_shape + " has " + std::to_string(values) +
                                    " values but the rows have " + std::to_string(p.run.dim()));
    p.top = o.keep != "bottom";
    p.bottom = o.keep != "top";
    p.chw = o.layout == "chw";
    p.count = static_cast<std::size_t>(std::min<std::uint64_t>(o.count, p.run.input.rows));
    image_grid g;
    g.cols = p.count;
    g.rows = 1 + p.top + p.bottom;
    g.height = p.shape[0];
    g.width = p.shape[1];
    g.zoom = o.zoom;
    // Sizes before any pixel exists (libpng would refuse them after the whole pass).
    checked_product({g.cols, g.width, g.zoom, g.rows, g.height, g.zoom, p.shape[2]}, "--count x --zoom image grid");
    if (g.pixel_width() > max_png_side || g.pixel_height() > max_png_side)
        throw std::invalid_argument("--count " + std::to_string(o.count) + " --zoom " + std::to_string(o.zoom) +
                                    " makes a PNG " + std::to_string(g.pixel_width()) + " x " +
                                    std::to_string(g.pixel_height()) + " pixels; at most " +
                                    std::to_string(max_png_side) + " on a side (use a smaller --count or --zoom)");
    require_memory(p.run.config(), 3 * g.pixel_width() * g.pixel_height() * p.shape[2], o.run.out);
    return p;
}

// The originals are the first images of the range, read again once the statistics are done.
image_grid draw(const project_plan& p, const subspace_projector& top, const subspace_projector& bottom,
                const project_options& o) {
    io::data_source src(p.run.input.source);
    io::source_batch b;
    src.next(b, p.count);
    const matrix_t up = top.project(b.view()), down = bottom.project(b.view());
    std::vector<double> originals(b.rows * b.cols);  // the rows as the statistics saw them (scaled)
    to_double_checked(b.view(), b.cols, originals.data(), b.first_row);
    image_grid g;
    g.cols = b.rows;
    g.rows = 1 + p.top + p.bottom;
    g.height = p.shape[0];
    g.width = p.shape[1];
    g.channels = p.shape[2];
    g.zoom = o.zoom;
    g.cells.resize(g.rows * g.cols);
    const std::size_t d = b.cols;
    for (std::size_t i = 0; i < g.cols; ++i) {
        std::size_t row = 0;
        g.cells[row++ * g.cols + i] = image_pixels(originals.data() + i * d, p.shape, p.chw);
        if (p.top) g.cells[row++ * g.cols + i] = image_pixels(up.data() + i * d, p.shape, p.chw);
        if (p.bottom) g.cells[row++ * g.cols + i] = image_pixels(down.data() + i * d, p.shape, p.chw);
    }
    return g;
}

// The finished statistics the projectors are built from: the exact route's; a sketch's own
// (--no-verify: k and explained from its estimates); or, verified (the default of the sketch
// routes), the Ritz vectors of the sketch's span with their exact Ritz values, so that k and
// the explained fraction are exact for the subspace drawn (MATH.md §7, as align and spectrum).
statistics project_statistics(const project_plan& p, const project_options& o, const mpi_context& mpi,
                              project_result& r) {
    if (!wants_verification(o.run)) {
        route_state state(p.run.config());
        r.run = stream(state, p.run, mpi);
        return finish_statistics(state, p.run.center);
    }
    own_basis_run v = verify_own_basis(p.run, mpi, p.park);
    r.run = std::move(v.run);
    statistics s = std::move(v.sketch);
    s.spec = ritz_spectrum(s.spec, v.pass).spec;
    return s;
}

project_result compute(const project_plan& p, const project_options& o, const mpi_context& mpi) {
    project_result r;
    const statistics s = project_statistics(p, o, mpi, r);
    // MATH.md §5: the projector centers the rows and adds the mean back for display.
    projector_options po;
    po.fraction = o.variance;
    const auto projector = [&](subspace_part part) {
        po.part = part;
        try {
            return subspace_projector::from_statistics(s, po);
        } catch (const std::invalid_argument& e) {  // a sketch too small for --variance
            std::string why = e.what();
            const std::string own = "subspace_projector: ";
            if (why.compare(0, own.size(), own) == 0) why.erase(0, own.size());
            throw user_error("--variance " + std::to_string(o.variance) + ": " + why + " (--rank, --method exact)");
        }
    };
    const subspace_projector top = projector(subspace_part::top), bottom = projector(subspace_part::bottom);
    r.grid = draw(p, top, bottom, o);
    r.verified = s.spec.ritz;
    r.n = s.spec.n;
    r.dim = p.run.dim();
    r.k = top.k;
    r.explained = top.explained;
    r.variance = o.variance;
    r.center = p.run.center;
    r.images = r.grid.cols;
    r.rows = {"original"};
    if (p.top) r.rows.push_back("top");
    if (p.bottom) r.rows.push_back("bottom");
    r.png = o.run.out;
    return r;
}

}  // namespace

int cmd_project(const project_options& o, const mpi_context& mpi) {
    const project_plan p = plan(o, mpi);
    const project_result r = compute(p, o, mpi);
    write_png(r.png, r.grid);
    print_stdout(o.run.json ? render_json(r) : render_text(r));
    return 0;
}

}  // namespace recalign::cli
