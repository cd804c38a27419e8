// The files of `figures`: one CSV per figure (numbers at full precision), its chart as PNG
// and SVG (gnuplot, render_charts.cpp), and the Figure 9 grid as PNG; each written atomically.
#include <algorithm>
#include <cstdio>

#include "figures.hpp"
#include "paths.hpp"
#include "render.hpp"

namespace recalign::cli {

namespace {

std::string ratio_label(double r) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4g", r);
    return buf;
}

// matplotlib's "cool" colormap, as the authors colour their ratios: cyan (t = 0) to magenta.
std::string cool(double t) {
    char buf[16];
    const int r = static_cast<int>(255.0 * t + 0.5), g = 255 - r;
    std::snprintf(buf, sizeof buf, "#%02x%02xff", r, g);
    return buf;
}

// Draws `c` (its csv already written) as name.png and name.svg in dir.
void draw(chart c, const std::string& dir, const std::string& name, bool quiet, std::vector<std::string>& charts) {
    c.csv = out_path(dir, name + ".csv");
    c.png = out_path(dir, name + ".png");
    c.svg = out_path(dir, name + ".svg");
    if (draw_chart(c, quiet)) charts.push_back(name);
}

// One data set's Figure 2 CSV: k, k_percent_of_d, alignment (the format --overlay reads).
void write_curve_csv(const std::string& path, const vector_t& curve, std::size_t dim) {
    std::vector<double> pct(curve.size());
    for (std::size_t i = 0; i < pct.size(); ++i) pct[i] = 100.0 * static_cast<double>(i + 1) / static_cast<double>(dim);
    write_output_file(path, csv_text({"k_percent_of_d", "alignment"}, {pct, to_vec(curve)}, "k"));
}

// --dataset: one CSV per data set (as above) and fig2_datasets.csv with one column per data set
// (the main data's first; a cell is empty where K exceeds that data set's D).
void write_dataset_csvs(const figures_result& r, const std::string& dir) {
    if (r.datasets.empty()) return;
    std::vector<std::string> names{"alignment"};
    std::vector<std::vector<double>> cols{to_vec(r.clean.curve)};
    for (const dataset_curve& c : r.datasets) {
        write_curve_csv(out_path(dir, "fig2_alignment_" + c.name + ".csv"), c.alignment.curve, c.dim);
        names.push_back("alignment_" + c.name);
        cols.push_back(to_vec(c.alignment.curve));
    }
    write_output_file(out_path(dir, "fig2_datasets.csv"), csv_text(names, cols, "k"));
}

void write_figure2(const figures_result& r, const std::string& dir, bool quiet, std::vector<std::string>& charts) {
    write_curve_csv(out_path(dir, "fig2_alignment.csv"), r.clean.curve, r.dim);
    write_dataset_csvs(r, dir);
    std::size_t max_dim = r.dim;
    for (const dataset_curve& d : r.datasets) max_dim = std::max(max_dim, d.dim);
    const std::string scale = r.measure == alignment_measure::published ? "task alignment (%)" : "alignment";
    chart c;
    c.title = "Figure 2: alignment of the top-K principal subspace (" + std::string(measure_name(r.measure)) + ")";
    c.xlabel = "latent dimension (K)";
    c.ylabel = scale;
    c.first_column = 3;
    c.series = {r.data_name};
    c.series_csv = {out_path(dir, "fig2_alignment.csv")};
    for (const dataset_curve& d : r.datasets) {
        c.series.push_back(d.name);
        c.series_csv.push_back(out_path(dir, "fig2_alignment_" + d.name + ".csv"));
    }
    for (const auto& [name, path] : r.overlays) {
        c.series.push_back(name);
        c.series_csv.push_back(path);
    }
    c.extra = {"set xrange [1:" + std::to_string(std::min<std::size_t>(256, max_dim)) + "]", "set key bottom right"};
    if (r.measure == alignment_measure::published) c.extra.push_back("set yrange [0:100]");
    draw(c, dir, "fig2_alignment", quiet, charts);
    chart p = c;
    p.title = "Figure 2: alignment against K as % of the input dimension";
    p.xlabel = "latent dimension (% of input dimension)";
    p.x_column = 2;
    p.extra = c.extra;
    p.extra[0] = "set xrange [0:100]";
    p.png.clear();
    // The same CSV drawn against its second column.
    p.csv = out_path(dir, "fig2_alignment.csv");
    p.png = out_path(dir, "fig2_percent.png");
    p.svg = out_path(dir, "fig2_percent.svg");
    if (draw_chart(p, quiet)) charts.push_back("fig2_percent");
}

// Figure 7 (impact on supervised performance, %) and the noise impact, one pair per patch.
void write_figure7(const figures_result& r, const std::string& dir, bool quiet, std::vector<std::string>& charts) {
    const std::size_t nr = r.ratios.size();
    for (std::size_t pi = 0; pi < r.patches.size(); ++pi) {
        const std::string p = std::to_string(r.patches[pi]);
        std::vector<std::string> names, impact_names, titles, colors;
        std::vector<std::vector<double>> cols, impact_cols;
        for (std::size_t ri = 0; ri < nr; ++ri) {
            const figure7_cell& cell = r.grid[pi * nr + ri];
            std::vector<double> pct = to_vec(cell.denoising.relative_difference);
            for (double& v : pct) v *= 100.0;  // the authors' 100 (curve_p - curve_0) / curve_0
            names.push_back("ratio_" + ratio_label(cell.ratio));
            cols.push_back(pct);
            impact_names.push_back("ratio_" + ratio_label(cell.ratio));
            impact_cols.push_back(to_vec(cell.impact.normalised));
            titles.push_back("p = " + ratio_label(cell.ratio));
            colors.push_back(cool(nr > 1 ? static_cast<double>(ri) / static_cast<double>(nr - 1) : 0.0));
        }
        write_output_file(out_path(dir, "fig7_patch" + p + ".csv"), csv_text(names, cols, "k"));
        chart c;
        c.title = "Figure 7: masking with " + p + "x" + p + " patches (" + r.scheme + ")";
        c.xlabel = "embedding dim. (K)";
        c.ylabel = "impact on sup. perf. (%)";
        c.series = titles;
        c.colors = colors;
        // From K = 32 as the paper's figure, or from half the longest curve when that is shorter
        // than 64 (small D, or few informative directions): gnuplot refuses a range with no points.
        std::size_t longest = 0;
        for (const std::vector<double>& col : cols) longest = std::max(longest, col.size());
        c.extra = {"set xrange [" + std::to_string(std::min<std::size_t>(32, longest / 2)) + ":" + std::to_string(r.dim) + "]",
                   "set arrow from graph 0, first 0 to graph 1, first 0 nohead lw 3", "set key outside right"};
        draw(c, dir, "fig7_patch" + p, quiet, charts);
        write_output_file(out_path(dir, "impact_patch" + p + ".csv"), csv_text(impact_names, impact_cols, "k"));
        chart m = c;
        m.title = "Noise impact (label-free): subspace distance / K, " + p + "x" + p + " patches";
        m.ylabel = "sum sin^2 of principal angles / K";
        m.extra = {"set key outside right", "set logscale x"};
        draw(m, dir, "impact_patch" + p, quiet, charts);
    }
    if (r.extra_impacts.empty()) return;
    std::vector<std::string> names;
    std::vector<std::vector<double>> cols;
    for (const impact_entry& e : r.extra_impacts) {
        names.push_back(e.spec);
        cols.push_back(to_vec(e.impact.normalised));
    }
    write_output_file(out_path(dir, "impact_noises.csv"), csv_text(names, cols, "k"));
    chart c;
    c.title = "Noise impact (label-free) of the --noise models";
    c.xlabel = "K";
    c.ylabel = "sum sin^2 of principal angles / K";
    c.series = names;
    c.log_x = true;
    draw(c, dir, "impact_noises", quiet, charts);
}

void write_tradeoff(const figures_result& r, const std::string& dir, bool quiet, std::vector<std::string>& charts) {
    std::vector<double> l, rec, sup;
    for (const tradeoff_point& p : r.tradeoff.points) {
        l.push_back(p.lambda);
        rec.push_back(p.reconstruction_loss);
        sup.push_back(p.supervised_loss);
    }
    write_output_file(out_path(dir, "tradeoff.csv"),
                      csv_text({"lambda", "reconstruction_loss", "supervised_loss"}, {l, rec, sup}, ""));
    chart c;
    c.title = "Theorem 1 trade-off, K = " + std::to_string(r.tradeoff.k) + " (one point per lambda)";
    c.xlabel = "reconstruction loss";
    c.ylabel = "supervised loss";
    c.x_column = 2;
    c.first_column = 3;
    c.points = true;
    c.series = {"optimum for each lambda"};
    draw(c, dir, "tradeoff", quiet, charts);
}

}  // namespace

std::vector<std::string> figure_files(const std::vector<std::size_t>& patches, const std::vector<std::string>& datasets) {
    std::vector<std::string> files{"fig2_alignment.csv", "impact_noises.csv", "tradeoff.csv", "fig9_projections.png",
                                   "report.html"};
    std::vector<std::string> charts{"fig2_alignment", "fig2_percent", "impact_noises", "tradeoff"};
    if (!datasets.empty()) files.push_back("fig2_datasets.csv");
    for (const std::string& d : datasets) files.push_back("fig2_alignment_" + d + ".csv");
    for (std::size_t patch : patches)
        for (const char* base : {"fig7_patch", "impact_patch"}) {
            files.push_back(base + std::to_string(patch) + ".csv");
            charts.push_back(base + std::to_string(patch));
        }
    for (const std::string& c : charts)
        for (std::string& f : chart_files(c, true)) files.push_back(std::move(f));
    return files;
}

std::vector<std::string> write_figure_files(const figures_result& r, const std::string& dir, bool quiet) {
    std::vector<std::string> charts;
    write_figure2(r, dir, quiet, charts);
    write_figure7(r, dir, quiet, charts);
    write_tradeoff(r, dir, quiet, charts);
    if (!r.projections.cells.empty()) write_png(out_path(dir, "fig9_projections.png"), r.projections);
    return charts;
}

}  // namespace recalign::cli
