// report.html of `figures`: one self-contained page (every chart inlined as a data: URI, no
// script, no external resource), with the tables of the figures' numbers, the run's
// configuration, the input's fingerprint and where the numbers come from.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>

#include "figures.hpp"
#include "paths.hpp"
#include "render.hpp"

namespace recalign::cli {

namespace {

std::string base64(const std::string& in) {
    static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                           static_cast<unsigned char>(in[i + 2]);
        out += {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63], t[v & 63]};
    }
    if (i + 1 == in.size()) {
        const unsigned v = static_cast<unsigned char>(in[i]) << 16;
        out += {t[v >> 18], t[(v >> 12) & 63], '=', '='};
    } else if (i + 2 == in.size()) {
        const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
        out += {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63], '='};
    }
    return out;
}

std::string read_bytes(const std::string& path) {
    std::ifstream is(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(is), std::istreambuf_iterator<char>());
}

std::string escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '<') out += "&lt;";
        else if (c == '>') out += "&gt;";
        else if (c == '&') out += "&amp;";
        else if (c == '"') out += "&quot;";
        else out += c;
    }
    return out;
}

std::string num(double v, const char* fmt = "%.6g") {
    char buf[64];
    std::snprintf(buf, sizeof buf, fmt, v);
    return buf;
}

// The K at which the tables read the curves.
std::vector<std::size_t> table_ks(std::size_t d) {
    std::vector<std::size_t> ks;
    for (std::size_t k : {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000})
        if (k < d) ks.push_back(k);
    ks.push_back(d);
    return ks;
}

void row(std::ostringstream& h, const std::string& name, const std::string& value) {
    h << "<tr><th>" << escape(name) << "</th><td>" << escape(value) << "</td></tr>\n";
}

void configuration(std::ostringstream& h, const figures_result& r) {
    h << "<h2>Configuration</h2>\n<table>\n";
    row(h, "command", r.command_line);
    row(h, "samples n, D, classes C",
        std::to_string(r.run.n) + ", " + std::to_string(r.dim) + ", " + std::to_string(r.classes));
    row(h, "image shape", std::to_string(r.shape.height) + " x " + std::to_string(r.shape.width) + " x " +
                              std::to_string(r.shape.channels) + " (" + image_layout_name(r.shape.layout) + ")");
    row(h, "measure", measure_name(r.measure));
    row(h, "centering", r.centering + (r.centering == "inputs" ? " (inputs centered, one-hot targets raw)" : ""));
    row(h, "standardize", r.standardized ? "global: divided by sigma = " + num(r.sigma, "%.17g") : "none");
    row(h, "jitter", r.jitter > 0 ? num(r.jitter, "%.17g") + " x N(0,1), seed " + std::to_string(r.seed) : "none");
    std::string ratios;
    for (double v : r.ratios) ratios += (ratios.empty() ? "" : ", ") + num(v, "%.4g");
    std::string patches;
    for (std::size_t p : r.patches) patches += (patches.empty() ? "" : ", ") + std::to_string(p);
    row(h, "Figure 7 grid", "patches " + patches + "; ratios " + ratios + "; " + r.scheme);
    row(h, "trade-off", "K = " + std::to_string(r.tradeoff.k) + ", " + std::to_string(r.tradeoff.points.size()) + " lambdas");
    row(h, "analyses (after the pass)", num(r.seconds_analysis, "%.1f") + " s");
    h << "</table>\n<h2>Input</h2>\n<table>\n";
    std::vector<std::pair<std::string, const run_state*>> runs{{"", &r.run}};
    for (const dataset_curve& d : r.datasets) runs.emplace_back(d.name + ": ", &d.run);  // --dataset
    for (const auto& [prefix, run] : runs)
    for (const input_segment& s : run->segments) {
        for (const io::file_fingerprint* f : {&s.images, &s.labels}) {
            if (f->empty()) continue;
            row(h, prefix + (f == &s.images ? "images" : "labels"),
                f->path + " | size " + std::to_string(f->size) + " | mtime_ns " + std::to_string(f->mtime_ns) +
                    " | hash of first and last 64 KiB " + std::to_string(f->content_hash));
        }
        row(h, prefix + "rows", std::to_string(s.first_row) + " .. " + std::to_string(s.first_row + s.rows_total) + " (format " +
                           s.format + ", batch " + std::to_string(s.batch) + ")");
    }
    h << "</table>\n<h2>Provenance</h2>\n<p>Exact: the D x D moments (n, mean, centered Sxx, Sxy, class counts) "
         "accumulated in one streamed pass in double precision (Chan's rule), one eigendecomposition of Sxx "
         "(LAPACK, status "
      << solver_status_name(r.status)
      << "), closed-form mask expectations (MATH.md §4), one generalized eigenproblem per mask. No sketch and no "
         "Monte Carlo: every number is exact up to floating-point rounding. Skipped directions of the clean "
         "spectrum (eigenvalue below 1e-12 of the largest): "
      << r.clean.skipped << ".</p>\n";
}

void tables(std::ostringstream& h, const figures_result& r) {
    const std::vector<std::size_t> ks = table_ks(r.dim);
    h << "<h2>Figure 2: alignment (" << measure_name(r.measure) << ")</h2>\n<table>\n<tr><th>K</th>";
    for (std::size_t k : ks) h << "<th>" << k << "</th>";
    h << "</tr>\n<tr><th>alignment</th>";
    for (std::size_t k : ks) h << "<td>" << (k <= r.clean.curve.size() ? num(r.clean.curve(k - 1)) : "-") << "</td>";
    h << "</tr>\n";
    for (const dataset_curve& d : r.datasets) {  // --dataset: one row each, same K
        h << "<tr><th>" << escape(d.name) << " (" << escape(d.images) << ", n = " << d.run.n << ", D = " << d.dim
          << ")</th>";
        for (std::size_t k : ks)
            h << "<td>" << (k <= d.alignment.curve.size() ? num(d.alignment.curve(k - 1)) : "-") << "</td>";
        h << "</tr>\n";
    }
    h << "</table>\n";
    h << "<h2>Figure 7: impact on supervised performance (%)</h2>\n<table>\n<tr><th>patch</th><th>ratio</th>";
    for (std::size_t k : ks) h << "<th>K = " << k << "</th>";
    h << "</tr>\n";
    for (const figure7_cell& c : r.grid) {
        h << "<tr><td>" << c.patch << "x" << c.patch << "</td><td>" << num(c.ratio, "%.4g") << "</td>";
        for (std::size_t k : ks)
            h << "<td>"
              << (k <= c.denoising.relative_difference.size() ? num(100.0 * c.denoising.relative_difference(k - 1), "%.4g")
                                                              : "-")
              << "</td>";
        h << "</tr>\n";
    }
    h << "</table>\n<h2>Trade-off (Theorem 1), K = " << r.tradeoff.k
      << "</h2>\n<table>\n<tr><th>lambda</th><th>supervised loss</th><th>reconstruction loss</th></tr>\n";
    for (const tradeoff_point& p : r.tradeoff.points)
        h << "<tr><td>" << num(p.lambda) << "</td><td>" << num(p.supervised_loss, "%.10g") << "</td><td>"
          << num(p.reconstruction_loss, "%.10g") << "</td></tr>\n";
    h << "</table>\n";
}

}  // namespace

void write_report(const figures_result& r, const std::string& dir, const std::vector<std::string>& charts) {
    std::ostringstream h;
    h << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>recalign figures: "
      << escape(r.data_name) << "</title>\n<style>\nbody{font-family:sans-serif;max-width:1000px;margin:2em auto;"
         "color:#222}\ntable{border-collapse:collapse;margin:1em 0;font-size:0.85em}\ntd,th{border:1px solid #bbb;"
         "padding:2px 6px;text-align:right}\nth{background:#f0f0f0}\nfigure{margin:1.5em 0}\nimg{max-width:100%;"
         "border:1px solid #ddd}\n</style>\n</head>\n<body>\n<h1>Learning by reconstruction: the paper's figures</h1>\n"
      << "<p>Data: " << escape(r.data_name) << ". Computed by recalign in one pass, with the measure "
      << measure_name(r.measure) << " (MATH.md §8: the authors' published code).</p>\n";
    for (const std::string& c : charts) {
        h << "<figure class=\"chart\" id=\"" << escape(c) << "\"><img alt=\"" << escape(c)
          << "\" src=\"data:image/png;base64," << base64(read_bytes(out_path(dir, c + ".png"))) << "\">"
          << "<figcaption>" << escape(c) << ": " << escape(c) << ".csv, " << escape(c) << ".svg</figcaption></figure>\n";
    }
    if (!r.projections.cells.empty())
        h << "<figure class=\"chart\" id=\"fig9_projections\"><img alt=\"fig9\" src=\"data:image/png;base64,"
          << base64(read_bytes(out_path(dir, "fig9_projections.png")))
          << "\"><figcaption>Figure 9: originals (top row), their projection on the top " << r.top_k
          << " principal directions (explaining " << num(100.0 * r.explained, "%.1f")
          << "% of the variance) and on the complement (bottom row)</figcaption></figure>\n";
    tables(h, r);
    configuration(h, r);
    h << "</body>\n</html>\n";
    write_output_file(out_path(dir, "report.html"), h.str());
}

}  // namespace recalign::cli
