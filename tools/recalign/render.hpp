// Renderers: results (results.hpp) to text, JSON, CSV files, charts and PNG grids. Files are
// written first, atomically; stdout is printed last, by main, only when everything else
// succeeded (a refusal prints nothing on stdout).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "results.hpp"

namespace recalign::cli {

// Text and JSON: the document for stdout (with its final newline).
std::string render_text(const align_result& r);
std::string render_text(const spectrum_result& r);
std::string render_text(const project_result& r);
std::string render_text(const tradeoff_cli_result& r);
std::string render_text(const denoise_result& r);
std::string render_text(const merge_result& r);
std::string render_text(const info_result& r);

std::string render_json(const align_result& r);
std::string render_json(const spectrum_result& r);
std::string render_json(const project_result& r);
std::string render_json(const tradeoff_cli_result& r);
std::string render_json(const denoise_result& r);
std::string render_json(const info_result& r);

// CSV files and gnuplot charts into options.out (render_files.cpp, render_charts.cpp).
// The files write_files writes in --out DIR for `command` (align, spectrum, tradeoff,
// denoise), checked before the run (require_output_dir).
std::vector<std::string> output_files(const std::string& command);
void write_files(const align_result& r, const render_options& o);
void write_files(const spectrum_result& r, const render_options& o);
void write_files(const tradeoff_cli_result& r, const render_options& o);
void write_files(const denoise_result& r, const render_options& o);

// Prints a rendered document on stdout (the last step of a successful command).
void print_stdout(const std::string& text);

// Files first (atomically), then the document on stdout: a run that fails writing prints nothing.
template <class Result>
void emit(const Result& r, const render_options& o) {
    if (!o.out.empty()) write_files(r, o);
    print_stdout(o.json ? render_json(r) : render_text(r));
}

// The PNG grid of `project` (render_png.cpp), written atomically.
void write_png(const std::string& path, const image_grid& g);
// One image (D values, H,W,C `shape`, layout hwc or chw) stretched to [0, 255] by its own
// minimum and maximum, as HWC bytes (a cell of image_grid).
std::vector<unsigned char> image_pixels(const double* v, const std::vector<std::size_t>& shape, bool chw);
// Largest width or height this PNG writer accepts (libpng's default user limit).
constexpr std::size_t max_png_side = 1000000;

// A curve as the plain vector the CSV and JSON writers take.
inline std::vector<double> to_vec(const vector_t& v) { return std::vector<double>(v.begin(), v.end()); }
// A 64-bit hash as 0x and 16 hexadecimal digits (the text and the JSON print it alike).
std::string hex(std::uint64_t v);

// CSV text of equally long numeric columns (the first column an index counting from 1 when
// `index_name` is non-empty); a value missing from a shorter column is an empty cell.
std::string csv_text(const std::vector<std::string>& names, const std::vector<std::vector<double>>& columns,
                     const std::string& index_name = "k");

struct chart {
    std::string csv;   // data file (first column x, others y)
    std::string png;   // output
    std::string svg;   // also this vector version (gnuplot's svg terminal) when not empty
    std::string title, xlabel, ylabel;
    std::vector<std::string> series;  // titles of the y columns first_column, first_column + 1, ...
    std::size_t first_column = 2;
    std::size_t x_column = 1;
    bool points = false;              // linespoints instead of lines
    bool log_x = false, log_y = false;
    std::vector<std::string> extra;   // extra gnuplot commands (e.g. a zero line)
    std::vector<std::string> colors;  // line colours per series (gnuplot rgb strings), default gnuplot's
    // When not empty: series i is read from series_csv[i], columns x_column:first_column (overlays).
    std::vector<std::string> series_csv;
};
// Draws the chart with gnuplot (pngcairo, else png) into a temporary file renamed over
// c.png. Returns false and prints one line on stderr when gnuplot is missing or fails: a
// chart is never worth failing a run for.
bool draw_chart(const chart& c, bool quiet);

}  // namespace recalign::cli
