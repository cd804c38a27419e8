// What `figures` computes (cmd_figures.cpp) and how it is written (render_figures.cpp: CSV,
// PNG and SVG charts, the Figure 9 grid; render_report.cpp: report.html).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "recalign/align/alignment.hpp"
#include "recalign/align/denoising.hpp"
#include "recalign/align/tradeoff.hpp"
#include "options.hpp"
#include "results.hpp"
#include "validate.hpp"

namespace recalign::cli {

// One cell of Figure 7's grid: a closed-form mask, its denoising alignment and noise impact.
struct figure7_cell {
    std::size_t patch = 0;
    double ratio = 0.0;
    std::string spec;
    denoising_result denoising;
    noise_impact_result impact;
};

// A noise of the noise-impact diagnostic given with --noise (beside the grid's masks).
struct impact_entry {
    std::string spec;
    noise_impact_result impact;
};

// A data set of --dataset NAME=IMAGES[,...] (figures_datasets.cpp): prepared before any data
// is read, streamed in its own pass after the main data; its Figure 2 curve is overlaid.
struct dataset_plan {
    std::string name;
    prepared_run run;
};

struct dataset_curve {
    std::string name, images;
    run_state run;
    std::size_t dim = 0;
    alignment_result alignment;
};

struct figures_result {
    run_state run;
    std::string command_line;        // as typed (the report's configuration)
    std::string data_name;           // the data set's images file
    std::size_t dim = 0, classes = 0;
    image_shape shape;
    alignment_measure measure = alignment_measure::published;
    std::string centering;           // "inputs", "both" or "none"
    bool standardized = false;
    double sigma = 0.0;              // the global standard deviation divided out (standardized)
    double jitter = 0.0;
    std::uint64_t seed = 0;
    std::string scheme;
    alignment_result clean;          // Figure 2
    solver_status status = solver_status::converged;  // of the clean eigendecomposition
    std::vector<std::size_t> patches;
    std::vector<double> ratios;
    std::vector<figure7_cell> grid;  // patches x ratios, patch-major
    std::vector<impact_entry> extra_impacts;
    std::vector<std::pair<std::string, std::string>> overlays;  // (name, fig2_alignment.csv) of other runs
    std::vector<dataset_curve> datasets;  // --dataset: curves of more data sets, same run choices
    tradeoff_result tradeoff;
    // Figure 9 (empty grid with --from: the images are not at hand).
    image_grid projections;
    std::size_t top_k = 0;
    double variance = 0.0, explained = 0.0;
    double seconds_analysis = 0.0;   // wall time of the analyses after the pass
};

// --dataset: each data set prepared and checked (names unique, also against --overlay names;
// files, options) before the first byte of any data is read.
std::vector<dataset_plan> prepare_datasets(const figures_cli_options& o, const run_needs& needs,
                                           const std::vector<std::pair<std::string, std::string>>& overlays);
// One pass per data set (its own checkpoint), then its Figure 2 curve with `measure`.
std::vector<dataset_curve> stream_datasets(const std::vector<dataset_plan>& plans, alignment_measure measure,
                                           const mpi_context& mpi);

// The files write_figure_files and the report may write for these patch sizes and --dataset
// names (checked before the run: require_output_dir).
std::vector<std::string> figure_files(const std::vector<std::size_t>& patches, const std::vector<std::string>& datasets);
// Writes every CSV, chart (PNG + SVG) and the Figure 9 PNG into `dir`; returns the charts'
// names (without extension) in the order the report shows them.
std::vector<std::string> write_figure_files(const figures_result& r, const std::string& dir, bool quiet);
// report.html in `dir`: self-contained (charts inlined as data: URIs), tables, configuration,
// input fingerprint and the numbers' provenance.
void write_report(const figures_result& r, const std::string& dir, const std::vector<std::string>& charts);

}  // namespace recalign::cli
