// Checks that need no data: a data-reading command resolves its input (files, format, row
// range, D from the images header, C from --classes or the labels), its route and the
// memory it will need, and refuses what cannot work before the first byte of data is read.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "driver.hpp"
#include "jitter_state.hpp"
#include "memory_trace.hpp"
#include "options.hpp"
#include "recalign/spectral/statistics.hpp"
#include "recalign/stats/moments.hpp"
#include "run_state.hpp"

namespace recalign::cli {

struct run_needs {
    const char* command = "";
    bool labels = false;            // the analysis needs labels
    bool default_centered = false;  // PCA commands
    bool default_raw_targets = false;  // --measure published: inputs centered, targets raw by default
    bool from_allowed = true;       // project re-reads images: no --from
    bool own_layout = false;        // --layout is the command's own (project, denoise, figures): it orders raw rows too
    bool draws = false;             // the command draws from --seed itself (denoise's Monte-Carlo noises)
    unsigned exact_matrices = 3;    // D x D at the exact route's peak (run_memory): 2 for eigenvalues alone
    // Nyström's sketch passes when --passes is not given: 2 for a denoise run that refines a
    // masking noise (its refinement converges from a two-pass basis in fewer passes than the
    // extra pass costs: BENCHMARKS.md, issue 14), 1 for every other run.
    std::size_t default_passes = 1;
    recalign::analysis analysis = recalign::analysis::spectrum;  // for check_route
};

// A data-reading command's run, resolved and checked.
struct prepared_run {
    centering center = centering::uncentered;
    bool raw_targets = false;   // --center inputs: the targets stay raw (MATH.md §8)
    bool standardize = false;   // --standardize global, applied to the finished statistics
    double jitter = 0.0;        // --jitter S, keyed by (jitter_seed, row)
    std::uint64_t jitter_seed = 0;
    drive_input input;              // reading data
    drive_options drive;
    std::optional<run_state> from;  // --from: the checkpoint's state (accumulator bytes included, unless from_file)
    std::string from_path;
    // --from of a run checkpoint: the file, its state read from where it lies (state_io.hpp).
    std::shared_ptr<checkpoint_file> from_file;

    const run_config& config() const { return from ? from->config : input.config; }
    std::size_t dim() const { return static_cast<std::size_t>(config().dim); }
};

prepared_run prepare_run(const data_options& d, const run_options& r, const run_needs& needs);

// Streams the prepared run through `state` (drive), or loads its --from checkpoint (drive_from).
// Data runs go through a jitter_state (jitter_state.hpp: --jitter, and --resume of a jittered
// checkpoint only with the same jitter); --from analyses the accumulated state as it is.
inline run_state stream(stream_state& state, const prepared_run& p, const mpi_context& mpi) {
    if (p.from) return drive_from(state, *p.from, p.from_path, p.drive.quiet, mpi, p.drive.command, p.from_file.get());
    std::unique_ptr<jitter_state> holder;
    run_state r = drive(with_jitter(state, p.jitter, p.jitter_seed, holder), p.input, p.drive, mpi);
    memory_mark("stream ended");  // RECALIGN_MEMORY_TRACE: the last pass's peak
    release_free_memory();        // the batches' buffers, before the analyses' D x D matrices
    return r;
}

// The run's finishing choices on finished statistics: raw targets, global standardisation.
statistics finish_choices(statistics s, const prepared_run& p);

// Bytes a run of `config` holds at its largest (accumulation, then the finished statistics
// and the analyses), plus `extra`; user_error with the size and the way out when it exceeds
// this machine's physical memory.
// `exact_matrices`: the exact route's D x D matrices at its peak (run_memory; run_needs).
void require_memory(const run_config& config, std::uint64_t extra, const std::string& what, unsigned exact_matrices = 3);
// The memory an exact eigensolver of that run may add to what require_memory counts (dsyevr's
// 3 D x D): this machine's physical memory less that estimate, the one budget both use. The
// solvers take dsyevd (faster; its workspace is 2 D x D more: 5 at the peak, 4 when Sxx is
// released, 3 when the accumulator is consumed as align, spectrum and tradeoff do, so that
// there it always fits the estimate: route_state.hpp) where it fits, dsyevr otherwise
// (spectral/eigen.hpp).
eigen_options solver_memory(const run_config& config, std::uint64_t extra = 0);
// `bytes` of matrices that wait on disk in unlinked files in `dir` ($TMPDIR, io/spill.hpp)
// during the run: user_error naming `dir`, the bytes needed and free (and `what` keeps them
// there) when the directory cannot be examined or has less room. Tests may give the free
// bytes in RECALIGN_TEST_SPILL_FREE (no small file system is at hand to fill).
void require_spill_space(const std::string& dir, std::uint64_t bytes, const std::string& what);

// The source options DATA resolves to (the default data set without --images).
io::source_options resolve_data(const data_options& d, bool want_labels);

// Parsers of option values; each throws std::invalid_argument naming the option.
double parse_scale(const std::string& s);
std::vector<double> parse_list(const std::string& s, const char* what);
// "H,W,C" or "H,W" (C = 1), positive integers whose product fits.
std::vector<std::size_t> parse_shape(const std::string& s);
// A comma-separated list of integers k in [1, max_k].
// The first value of a list given on the command line that repeats an earlier one (null when
// none): a curve or a file per value would be drawn twice or overwritten.
template <class T>
const T* first_repeat(const std::vector<T>& values) {
    for (std::size_t i = 1; i < values.size(); ++i)
        for (std::size_t j = 0; j < i; ++j)
            if (values[j] == values[i]) return &values[i];
    return nullptr;
}
// `bound` names what max_k is in the refusal ("D", "the image's shorter side").
std::vector<std::size_t> parse_k_list(const std::string& s, const char* what, std::size_t max_k, const char* bound = "D");
centering pick_centering(const run_options& r, bool default_centered);
// --center inputs, or no --center when `by_default` (--measure published).
bool pick_raw_targets(const run_options& r, bool by_default);

}  // namespace recalign::cli
