// The commands of the recalign tool: their options (registered on a CLI11 app) and bodies.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace recalign::cli {

// DATA options shared by every data-reading command.
struct data_args {
    std::string images, labels, format = "auto", raw_shape, raw_dtype = "u8", scale;
    std::size_t classes = 0;
    std::size_t batch = 1000;
    std::uint64_t skip = 0, limit = 0;
};

// Accumulation, checkpoint and output options.
struct run_args {
    std::string method = "exact";
    std::string precision = "f64";  // --precision: f64 | f32-kernels
    std::size_t rank = 0, passes = 1;
    std::uint64_t seed = 0;
    std::string checkpoint, from;
    std::uint64_t checkpoint_every = 0;
    bool resume = false, quiet = false, json = false;
    std::string out;
    bool center = false, no_center = false;
    std::string measure = "paper";
};

struct project_args {
    std::string keep = "both", image_shape, layout = "hwc", out;
    double variance = 0.9;
    std::size_t count = 8, zoom = 2;
};

struct tradeoff_args {
    std::string lambdas;
    std::size_t k = 0;
};

struct denoise_args {
    std::string image_shape, layout = "hwc", k_list;
    std::vector<std::string> noises;
    std::size_t monte_carlo = 0;
};

struct command_set {
    CLI::App *align = nullptr, *spectrum = nullptr, *project = nullptr, *merge = nullptr, *info = nullptr;
    CLI::App *tradeoff = nullptr, *denoise = nullptr;
    data_args data_align, data_spectrum, data_project, data_tradeoff, data_denoise;
    run_args run_align, run_spectrum, run_project, run_tradeoff, run_denoise;
    tradeoff_args tradeoff_opts;
    denoise_args denoise_opts;
    project_args project_opts;
    std::vector<std::string> merge_inputs;
    std::string merge_output;
    std::string info_file;
    bool info_json = false;
};

void register_commands(CLI::App& app, command_set& c);
// Runs the parsed command; returns the exit status (errors are reported here).
int run_selected(command_set& c);

}  // namespace recalign::cli
