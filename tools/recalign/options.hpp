// The options of every command, as typed structs filled by CLI11 (options.cpp), and the
// checks that need no data (validate.cpp): everything the bug list of issue 12 found only
// after reading the whole input is refused here, before the first byte of data is read.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace recalign::cli {

// A mistake of the user's that is not about input data (an unwritable --out path, a bad
// option combination): one line on stderr, exit status 2.
struct user_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// DATA options shared by every data-reading command.
struct data_options {
    std::vector<std::string> images, labels;  // repeatable: read as one stream
    std::string format = "auto", raw_shape, raw_dtype = "u8", scale;
    // Image folders, lists and CIFAR (io/image.hpp geometry): --root, --channels, --resize,
    // --crop, --layout (project and denoise: their own --layout), --label-kind, --threads,
    // --skip-unreadable.
    std::string root, classes_from, crop, layout = "hwc", label_kind;
    int channels = 3;
    std::size_t resize = 0, threads = 0;
    bool skip_unreadable = false;
    std::size_t classes = 0;
    std::size_t batch = 1000;
    std::uint64_t skip = 0, limit = 0;
};

// Route, checkpoint and output options shared by the analysing commands.
struct run_options {
    std::string method = "exact";
    std::string precision = "f64";  // --precision: f64 | f32-kernels
    std::string test_matrix = "signs";  // --test-matrix (nystrom): signs | sparse
    double memory_gib = 0.0;        // --memory: the run's memory budget in GiB (0: physical memory)
    std::size_t rank = 0;
    // --passes Q (nystrom); empty: not given, the command's default (run_needs::default_passes).
    std::optional<std::size_t> passes;
    double tolerance = 0.0;  // --tolerance T (nystrom): 0 = off, run all --passes
    std::uint64_t seed = 0;
    std::string checkpoint, from;
    std::uint64_t checkpoint_every = 0;
    bool resume = false, quiet = false, json = false;
    std::string out;  // a directory (project: the PNG file)
    bool no_center = false;
    std::string center;       // --center [inputs|both|none]: empty when not given; bare --center = both
    std::string standardize = "none";  // --standardize none|global (MATH.md §8)
    double jitter = 0.0;      // --jitter S: S · N(0, 1) added to every value, keyed by (--seed, row)
    bool verify = false, no_verify = false;  // sketch routes: the verification pass (default on)
    // denoise --refine N on a sketch route with a masking noise (empty: not given, default_refine).
    std::optional<std::size_t> refine;
    unsigned test_batch_delay_ms = 0;  // hidden --test-batch-delay-ms: lets tests kill a run mid-way
};

// Refinement passes of a masking noise's subspace on a sketch route without --refine.
inline constexpr std::size_t default_refine = 8;
// tradeoff on a sketch route without --refine: the most CG passes after the first verification pass.
inline constexpr std::size_t default_tradeoff_refine = 20;

struct align_options {
    data_options data;
    run_options run;
    std::string measure = "paper";
};

struct spectrum_options {
    data_options data;
    run_options run;
};

struct project_options {
    data_options data;
    run_options run;
    std::string keep = "both", image_shape, layout = "hwc";
    double variance = 0.9;
    std::size_t count = 8, zoom = 2;
};

struct tradeoff_cli_options {
    data_options data;
    run_options run;
    std::string lambdas;
    std::size_t k = 0;
};

struct denoise_cli_options {
    data_options data;
    run_options run;
    std::string measure = "paper", image_shape, layout = "hwc", k_list;
    std::vector<std::string> noises;
    std::size_t monte_carlo = 0;
};

// figures: the paper's figures in one pass (cmd_figures.cpp).
struct figures_cli_options {
    data_options data;
    run_options run;
    std::string measure = "published", image_shape, layout = "hwc";
    std::string patches = "1,2,4", ratios, scheme = "bernoulli";  // ratios empty: linspace(0, 0.99, 10)
    std::string lambdas = "0,0.0001,0.001,0.01,0.1,1,10,100";
    std::size_t tradeoff_k = 0;  // 0: C
    std::vector<std::string> noises;  // extra noises for the noise-impact diagnostic
    std::vector<std::string> overlays;  // NAME=FILE: Figure 2 curves of other figures runs
    std::vector<std::string> datasets;  // NAME=IMAGES[,labels=FILE][,format=F]: more data sets (Figure 2)
    double variance = 0.9;
    std::size_t count = 8;
    std::string command_text;  // the command line as typed (set by main, for the report)
};

struct merge_options {
    std::vector<std::string> inputs;
    std::string output;
};

struct info_options {
    std::string file;
    bool json = false;
};

// The parsed command line: which command, and its options.
struct command_line {
    CLI::App *align = nullptr, *spectrum = nullptr, *project = nullptr, *tradeoff = nullptr, *denoise = nullptr;
    CLI::App *merge = nullptr, *info = nullptr, *figures = nullptr;
    figures_cli_options figures_opts;
    align_options align_opts;
    spectrum_options spectrum_opts;
    project_options project_opts;
    tradeoff_cli_options tradeoff_opts;
    denoise_cli_options denoise_opts;
    merge_options merge_opts;
    info_options info_opts;
};

void register_commands(CLI::App& app, command_line& c);

}  // namespace recalign::cli
