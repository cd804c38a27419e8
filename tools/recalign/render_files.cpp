// CSV files and their charts in --out DIR, each written atomically.
#include "paths.hpp"
#include "render.hpp"

namespace recalign::cli {

namespace {

void write_csv(const std::string& path, const std::vector<std::string>& names,
               const std::vector<std::vector<double>>& columns, const std::string& index_name = "k") {
    write_output_file(path, csv_text(names, columns, index_name));
}

void write_spectrum_files(const std::string& dir, const spectrum& s, bool quiet) {
    write_csv(out_path(dir, "spectrum.csv"), {"eigenvalue", "explained"}, {to_vec(s.eigenvalues), to_vec(s.explained)});
    chart c;
    c.csv = out_path(dir, "spectrum.csv");
    c.png = out_path(dir, "spectrum.png");
    c.title = std::string("Spectrum (") + centering_name(s.center) + ", " + route_name(s.method) + ")";
    c.xlabel = "k";
    c.ylabel = "eigenvalue";
    c.log_y = true;
    c.series = {"eigenvalue"};
    draw_chart(c, quiet);
    chart e = c;
    e.png = out_path(dir, "explained.png");
    e.title = "Cumulative explained fraction";
    e.ylabel = "explained fraction";
    e.log_y = false;
    e.first_column = 3;
    e.series = {"explained"};
    e.extra = {"set yrange [0:1.05]"};
    draw_chart(e, quiet);
}

}  // namespace

std::vector<std::string> output_files(const std::string& command) {
    std::vector<std::string> files;
    const auto chart = [&files](const std::string& base) {
        for (std::string& f : chart_files(base)) files.push_back(std::move(f));
    };
    if (command == "align") {
        files.push_back("alignment.csv");
        chart("alignment");
    }
    if (command == "align" || command == "spectrum") {
        files.push_back("spectrum.csv");
        chart("spectrum");
        chart("explained");
    }
    if (command == "tradeoff") {
        files.push_back("tradeoff.csv");
        chart("tradeoff");
    }
    if (command == "denoise") {
        files.insert(files.end(), {"denoise.csv", "relative.csv"});
        chart("relative");
    }
    return files;
}

void write_files(const align_result& r, const render_options& o) {
    const alignment_result& a = r.curve;
    make_dirs(o.out);
    write_csv(out_path(o.out, "alignment.csv"), {"alignment", "eigenvalue"}, {to_vec(a.curve), to_vec(a.eigenvalues)});
    chart ch;
    ch.csv = out_path(o.out, "alignment.csv");
    ch.png = out_path(o.out, "alignment.png");
    ch.title = std::string("Alignment of the top-k subspace with the labels (") + measure_name(a.measure) + ", " +
               centering_name(a.center) + ")";
    ch.xlabel = "k (top principal directions)";
    ch.ylabel = "alignment";
    ch.log_x = true;
    ch.series = {"alignment"};
    draw_chart(ch, o.quiet);
    write_spectrum_files(o.out, r.spec, o.quiet);
}

void write_files(const spectrum_result& r, const render_options& o) {
    make_dirs(o.out);
    write_spectrum_files(o.out, r.spec, o.quiet);
}

void write_files(const tradeoff_cli_result& r, const render_options& o) {
    make_dirs(o.out);
    std::vector<double> l, s, rl;
    for (const tradeoff_point& p : r.t.points) {
        l.push_back(p.lambda);
        s.push_back(p.supervised_loss);
        rl.push_back(p.reconstruction_loss);
    }
    write_csv(out_path(o.out, "tradeoff.csv"), {"lambda", "supervised_loss", "reconstruction_loss"}, {l, s, rl}, "");
    chart ch;
    ch.csv = out_path(o.out, "tradeoff.csv");
    ch.png = out_path(o.out, "tradeoff.png");
    ch.title = "Theorem 1: losses at the optimum, K = " + std::to_string(r.t.k);
    ch.xlabel = "lambda";
    ch.ylabel = "loss";
    ch.series = {"supervised", "reconstruction"};
    bool positive = !l.empty();
    for (double v : l) positive = positive && v > 0;
    ch.log_x = positive;
    ch.log_y = true;
    draw_chart(ch, o.quiet);
}

// Every curve to its own length (a noise whose V* has fewer informative directions than D
// leaves empty cells past its end; the other columns go on).
void write_files(const denoise_result& r, const render_options& o) {
    make_dirs(o.out);
    std::vector<std::string> names{"clean"}, rel_names, titles;
    std::vector<std::vector<double>> cols{to_vec(r.report.clean.curve)}, rel_cols;
    for (std::size_t i = 0; i < r.report.noises.size(); ++i) {
        const tracker_noise_report& nr = r.report.noises[i];
        const std::string tag = "noise" + std::to_string(i + 1);
        names.insert(names.end(), {tag + "_alignment", tag + "_relative", tag + "_impact"});
        cols.push_back(to_vec(nr.denoising.curve));
        cols.push_back(to_vec(nr.denoising.relative_difference));
        cols.push_back(to_vec(nr.impact.distance));
        rel_names.push_back(tag);
        rel_cols.push_back(to_vec(nr.denoising.relative_difference));
        titles.push_back(nr.spec);
    }
    write_csv(out_path(o.out, "denoise.csv"), names, cols);
    write_csv(out_path(o.out, "relative.csv"), rel_names, rel_cols);
    chart ch;
    ch.csv = out_path(o.out, "relative.csv");
    ch.png = out_path(o.out, "relative.png");
    ch.title = "Relative alignment difference, denoising vs clean (paper's Figure 7)";
    ch.xlabel = "k";
    ch.ylabel = "(denoising - clean) / clean";
    ch.log_x = true;
    ch.series = titles;
    ch.extra = {"set arrow from graph 0, first 0 to graph 1, first 0 nohead dt 2"};
    draw_chart(ch, o.quiet);
}

}  // namespace recalign::cli
