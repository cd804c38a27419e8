// figures: the paper's figures, with its authors' numbers, from one pass over the data.
// The pass accumulates the exact moments (checkpointed and resumable like every run); one
// eigendecomposition of the clean statistics then serves Figure 2, every cell of Figure 7's
// grid (closed-form masks: MATH.md §4), the noise-impact diagnostic, the λ trade-off and
// Figure 9. Each noise costs one generalized eigenproblem, shared by its denoising alignment
// and its noise impact.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "figures.hpp"
#include "paths.hpp"
#include "recalign/spectral/subspace.hpp"
#include "render.hpp"
#include "route_state.hpp"
#include "validate.hpp"

namespace recalign::cli {

namespace {

struct figures_plan {
    prepared_run run;
    image_shape shape;
    std::vector<std::size_t> patches;
    std::vector<double> ratios;
    std::vector<noise_spec> grid;    // patches x ratios, patch-major
    std::vector<noise_spec> extra;   // --noise
    tradeoff_options tradeoff;
    alignment_measure measure = alignment_measure::published;
    std::size_t count = 0;
    std::vector<std::pair<std::string, std::string>> overlays;
    std::vector<dataset_plan> datasets;  // --dataset
};

// --overlay NAME=FILE: FILE must be a fig2_alignment.csv of figures (checked before any data).
std::pair<std::string, std::string> parse_overlay(const std::string& text) {
    const auto eq = text.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
        throw std::invalid_argument("--overlay: expected NAME=FILE, got '" + text + "'");
    const std::string path = text.substr(eq + 1);
    require_input_file(path);
    std::ifstream is(path);
    std::string header, first;
    std::getline(is, header);
    std::getline(is, first);
    if (header != "k,k_percent_of_d,alignment" || first.empty())
        throw std::invalid_argument(path + ": byte offset 0: not a fig2_alignment.csv of recalign figures (--overlay)");
    return {text.substr(0, eq), path};
}

image_shape parse_image(const figures_cli_options& o, std::size_t dim) {
    if (o.image_shape.empty() && !o.data.images.empty())
        throw std::invalid_argument("figures --images needs --image-shape H,W,C (Figures 7 and 9 are about images)");
    const std::vector<std::size_t> v = parse_shape(o.image_shape.empty() ? "28,28,1" : o.image_shape);
    image_shape s{v[0], v[1], v[2], o.layout == "chw" ? image_layout::chw : image_layout::hwc};
    if (s.dim() != dim)
        throw std::invalid_argument("--image-shape " + o.image_shape + " has " + std::to_string(s.dim()) +
                                    " values but the rows have " + std::to_string(dim));
    if (s.channels != 1 && s.channels != 3) throw std::invalid_argument("--image-shape: C must be 1 (gray) or 3 (RGB)");
    return s;
}

// The authors' grid: np.linspace(0, 0.99, 10).
std::vector<double> parse_ratios(const std::string& text) {
    std::vector<double> r;
    if (text.empty())
        for (int i = 0; i < 10; ++i) r.push_back(0.99 * i / 9.0);
    else
        r = parse_list(text, "--ratios");
    for (double v : r)
        if (!(v >= 0.0 && v < 1.0)) throw std::invalid_argument("--ratios: " + std::to_string(v) + " is not in [0, 1)");
    if (const double* v = first_repeat(r))
        throw std::invalid_argument("--ratios: " + std::to_string(*v) + " is listed twice (one curve per ratio)");
    return r;
}

noise_spec mask(std::size_t patch, double ratio, const std::string& scheme, const image_shape& shape) {
    noise_spec s;
    s.family = noise_family::mask;
    s.patch_h = s.patch_w = patch;
    s.ratio = ratio;
    s.scheme = scheme == "fixed" ? mask_scheme::fixed_count : mask_scheme::bernoulli;
    validate(s);
    make_patch_map(shape, patch, patch);
    return s;
}

figures_plan plan(const figures_cli_options& o) {
    require_output_dir("--out", o.run.out);
    figures_plan p;
    p.measure = parse_measure(o.measure);
    run_needs needs;
    needs.command = "figures";
    needs.labels = true;
    needs.analysis = analysis::denoising;  // the exact D x D statistics (MATH.md §3-4)
    needs.default_raw_targets = p.measure == alignment_measure::published;
    needs.own_layout = true;
    data_options data = o.data;
    data.layout = o.layout;  // --layout orders decoded images too
    p.run = prepare_run(data, o.run, needs);
    const std::size_t d = p.run.dim();
    p.shape = parse_image(o, d);
    p.patches = parse_k_list(o.patches, "--patches", std::min(p.shape.height, p.shape.width), "the image's shorter side");
    p.ratios = parse_ratios(o.ratios);
    for (std::size_t patch : p.patches)
        for (double ratio : p.ratios) p.grid.push_back(mask(patch, ratio, o.scheme, p.shape));
    for (const std::string& text : o.noises) {
        try {
            noise_spec s = parse_noise_spec(text);
            if (s.draws) throw std::invalid_argument("figures uses closed forms only (no draws)");
            validate(s);
            if (s.family == noise_family::mask) make_patch_map(s.shape.empty() ? p.shape : s.shape, s.patch_h, s.patch_w);
            p.extra.push_back(s);
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument("--noise " + text + ": " + e.what());
        }
    }
    std::vector<std::string> overlay_names;
    for (const std::string& text : o.overlays) {
        p.overlays.push_back(parse_overlay(text));
        overlay_names.push_back(p.overlays.back().first);
    }
    if (const std::string* name = first_repeat(overlay_names))
        throw std::invalid_argument("--overlay: the name '" + *name + "' is given twice (it labels one curve of Figure 2)");
    p.datasets = prepare_datasets(o, needs, p.overlays);
    std::vector<std::string> dataset_names;
    for (const dataset_plan& ds : p.datasets) dataset_names.push_back(ds.name);
    require_output_dir("--out", o.run.out, figure_files(p.patches, dataset_names));
    p.tradeoff.lambdas = parse_list(o.lambdas, "--lambda");
    for (double l : p.tradeoff.lambdas)
        if (!(l >= 0) || !std::isfinite(l))
            throw std::invalid_argument("--lambda: " + std::to_string(l) + " is not a finite number >= 0");
    p.tradeoff.k = o.tradeoff_k ? o.tradeoff_k : static_cast<std::size_t>(p.run.config().classes);
    if (p.tradeoff.k == 0 || p.tradeoff.k > d)
        throw std::invalid_argument("--tradeoff-k must lie in [1, " + std::to_string(d) + "] (D = " + std::to_string(d) + ")");
    if (!(o.variance >= 0 && o.variance <= 1)) throw std::invalid_argument("--variance must lie in [0, 1]");
    p.count = p.run.from ? 0 : static_cast<std::size_t>(std::min<std::uint64_t>(o.count, p.run.input.rows));
    // Beside the moments: one noise's Bs and G, the whitening and the bases (about 6 D x D).
    require_memory(p.run.config(), 6 * 8ULL * d * d, "figures");
    return p;
}

// Figure 9: the first images of the range and their projections on the top subspace
// (explaining `variance` of the total) and its complement (MATH.md §5), from the centered
// spectrum of the raw rows (not standardized: the images are shown in their own units).
void project_images(const figures_plan& p, const route_state& state, const statistics& base, double variance,
                    figures_result& r) {
    r.variance = variance;
    if (p.count == 0) return;
    const statistics centered = base.center == centering::centered ? base : finish_statistics(state, centering::centered);
    projector_options po;
    po.fraction = variance;
    const subspace_projector top = subspace_projector::from_statistics(centered, po);
    po.part = subspace_part::bottom;
    const subspace_projector bottom = subspace_projector::from_statistics(centered, po);
    r.top_k = top.k;
    r.explained = top.explained;
    io::data_source src(p.run.input.source);
    io::source_batch b;
    src.next(b, p.count);
    const matrix_t up = top.project(b.view()), down = bottom.project(b.view());
    std::vector<double> originals(b.rows * b.cols);
    to_double_checked(b.view(), b.cols, originals.data(), b.first_row);
    image_grid& g = r.projections;
    g.cols = b.rows;
    g.rows = 3;
    g.height = p.shape.height;
    g.width = p.shape.width;
    g.channels = p.shape.channels;
    g.zoom = 3;
    g.cells.resize(g.rows * g.cols);
    const std::vector<std::size_t> shape{p.shape.height, p.shape.width, p.shape.channels};
    const bool chw = p.shape.layout == image_layout::chw;
    for (std::size_t i = 0; i < g.cols; ++i) {
        g.cells[i] = image_pixels(originals.data() + i * b.cols, shape, chw);
        g.cells[g.cols + i] = image_pixels(up.data() + i * b.cols, shape, chw);
        g.cells[2 * g.cols + i] = image_pixels(down.data() + i * b.cols, shape, chw);
    }
}

figures_result compute(const figures_plan& p, const figures_cli_options& o, const mpi_context& mpi) {
    route_state state(p.run.config());
    figures_result r;
    r.run = stream(state, p.run, mpi);
    const auto start = std::chrono::steady_clock::now();
    const statistics base = finish_statistics(state, p.run.center);  // the one eigendecomposition
    const statistics s = finish_choices(base, p.run);
    r.dim = s.dim;
    r.classes = s.classes();
    r.shape = p.shape;
    r.measure = p.measure;
    r.centering = p.run.raw_targets ? "inputs" : p.run.center == centering::centered ? "both" : "none";
    r.standardized = p.run.standardize;
    r.sigma = p.run.standardize ? global_std(base) : 0.0;
    r.jitter = p.run.jitter;
    r.seed = p.run.jitter_seed;
    r.scheme = o.scheme;
    r.patches = p.patches;
    r.overlays = p.overlays;
    r.ratios = p.ratios;
    alignment_options ao;
    ao.measure = p.measure;
    r.clean = alignment_curve(s, ao);
    r.status = s.spec.status;
    denoising_options dopt;
    dopt.measure = p.measure;
    const matrix_t& sxx = s.sxx("figures");
    for (std::size_t i = 0; i < p.grid.size(); ++i) {
        figure7_cell cell;
        cell.patch = p.grid[i].patch_h;
        cell.ratio = p.grid[i].ratio;
        cell.spec = to_string(p.grid[i]);
        denoising_subspace_result sub = denoising_subspace(closed_form_noise(p.grid[i], sxx, s.n, p.shape));
        cell.impact = noise_impact(s, sub);
        cell.denoising = denoising_alignment(s, std::move(sub), dopt);
        r.grid.push_back(std::move(cell));
    }
    for (const noise_spec& n : p.extra)
        r.extra_impacts.push_back({to_string(n), noise_impact(s, closed_form_noise(n, sxx, s.n, p.shape))});
    r.tradeoff = tradeoff(s, p.tradeoff);
    project_images(p, state, base, o.variance, r);
    r.seconds_analysis = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return r;
}

}  // namespace

int cmd_figures(const figures_cli_options& o, const mpi_context& mpi) {
    const figures_plan p = plan(o);
    figures_result r = compute(p, o, mpi);
    r.datasets = stream_datasets(p.datasets, p.measure, mpi);  // after the main pass: one state at a time
    if (p.run.from) {
        r.data_name = p.run.from_path;
    } else {
        for (const std::string& f : p.run.input.source.images) r.data_name += (r.data_name.empty() ? "" : ", ") + f;
    }
    r.command_line = o.command_text;
    make_dirs(o.run.out);
    const std::vector<std::string> charts = write_figure_files(r, o.run.out, o.run.quiet);
    write_report(r, o.run.out, charts);
    std::string text;
    if (o.run.json) {
        nlohmann::json j;
        j["n"] = r.run.n;
        j["d"] = r.dim;
        j["classes"] = r.classes;
        j["measure"] = measure_name(r.measure);
        j["center"] = r.centering;
        j["sigma"] = r.sigma;
        j["masks"] = r.grid.size();
        j["charts"] = charts;
        j["report"] = out_path(o.run.out, "report.html");
        j["datasets"] = nlohmann::json::array();
        for (const dataset_curve& c : r.datasets) j["datasets"].push_back({{"name", c.name}, {"n", c.run.n}, {"d", c.dim}});
        j["seconds_analysis"] = r.seconds_analysis;
        text = j.dump(2) + "\n";
    } else {
        text = "figures: n = " + std::to_string(r.run.n) + ", D = " + std::to_string(r.dim) + ", C = " +
               std::to_string(r.classes) + ", " + std::to_string(r.grid.size()) + " masks, measure " +
               measure_name(r.measure) + "; analyses " + std::to_string(r.seconds_analysis) + " s\n";
        for (const dataset_curve& c : r.datasets)
            text += "dataset " + c.name + ": n = " + std::to_string(c.run.n) + ", D = " + std::to_string(c.dim) + "\n";
        for (const std::string& c : charts) {  // the files each chart has (fig2_percent reads fig2_alignment.csv)
            std::string ext;
            for (const char* e : {"csv", "png", "svg"})
                if (::access(out_path(o.run.out, c + "." + e).c_str(), F_OK) == 0) ext += std::string(ext.empty() ? "" : ",") + e;
            text += out_path(o.run.out, c) + (ext.find(',') == std::string::npos ? "." + ext : ".{" + ext + "}") + "\n";
        }
        if (!r.projections.cells.empty()) text += out_path(o.run.out, "fig9_projections.png") + "\n";
        for (const dataset_curve& c : r.datasets) text += out_path(o.run.out, "fig2_alignment_" + c.name + ".csv") + "\n";
        if (!r.datasets.empty()) text += out_path(o.run.out, "fig2_datasets.csv") + "\n";
        text += out_path(o.run.out, "report.html") + "\n";
    }
    print_stdout(text);
    return 0;
}

}  // namespace recalign::cli
