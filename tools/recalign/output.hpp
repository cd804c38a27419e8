// Output helpers of the CLI: CSV tables, gnuplot charts, PNG image grids, the progress line.
#pragma once

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace recalign::cli {

// A mistake of the user's that is not about input data (an unwritable --out path, a bad
// option combination): one line on stderr, exit status 2.
struct user_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// A CSV file of equally long numeric columns (first column written as an integer index if
// `index_name` is non-empty, counting from 1). Throws std::runtime_error naming the file.
void write_csv(const std::string& path, const std::vector<std::string>& names,
               const std::vector<std::vector<double>>& columns, const std::string& index_name = "k");

struct chart {
    std::string csv;        // data file (first column x, others y)
    std::string png;        // output
    std::string title, xlabel, ylabel;
    std::vector<std::string> series;  // titles of the y columns first_column, first_column + 1, ...
    std::size_t first_column = 2;
    bool log_x = false, log_y = false;
    std::vector<std::string> extra;   // extra gnuplot commands (e.g. a zero line)
};

// Draws the chart with gnuplot (pngcairo, else png). Returns false and prints one line on
// stderr when gnuplot is missing or fails: a chart is never worth failing a run for.
bool draw_chart(const chart& c, bool quiet);

// An 8-bit image grid: `cells` rows of images, each image h x w x channels (1 or 3) in
// [0, 255], written with libpng. Throws std::runtime_error naming the file.
struct image_grid {
    std::size_t rows = 0, cols = 0, height = 0, width = 0, channels = 1, zoom = 1, gap = 2;
    std::vector<std::vector<unsigned char>> cells;  // rows * cols images, row-major, HWC
};
void write_png(const std::string& path, const image_grid& g);

// "\r<done>/<total> samples  <rate> samples/s  ETA <t>" on stderr, at most 4 times a second.
class progress {
public:
    progress(bool enabled, std::uint64_t total, std::uint64_t start);
    void update(std::uint64_t done);
    void finish();

private:
    bool on_;
    std::uint64_t total_, start_;
    std::chrono::steady_clock::time_point t0_, last_;
    bool drawn_ = false;
};

// Creates a directory (and parents); throws std::runtime_error naming it.
void make_dirs(const std::string& dir);

}  // namespace recalign::cli
