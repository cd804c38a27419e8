// The accumulator behind align, spectrum, project and tradeoff, chosen by --method: the
// exact moment accumulator, a Frequent Directions sketch or a Nyström sketch, plus the class
// statistics when labels are read (every route: Sxy is D x C and Syy the class counts, so
// class ids never cost a (D + C)² joint scatter). One std::variant instead of three optionals: each
// operation is one visit, and `finish_statistics` is the one place that turns the state
// into the finished statistics the analyses read.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "recalign/sketch/frequent_directions.hpp"
#include "recalign/sketch/nystrom_sketch.hpp"
#include "recalign/stats/class_moments.hpp"
#include "recalign/spectral/statistics.hpp"
#include "recalign/stats/moments.hpp"
#include "run_state.hpp"
#include "stream_state.hpp"

namespace recalign::io {
class row_spill;
}

namespace recalign::cli {

// The Nyström sketch a fresh run creates (--method nystrom; also the sketch pass of denoise and
// tradeoff): one pass, K + 10 columns; Q >= 2 passes with run_config::krylov (align, spectrum,
// project), block Krylov over all Q passes with K + max(K, 10) columns (docs/benchmarks-log.md "Block Krylov": at
// 2 passes it beats IncrementalPCA on the power-law stream, p = 10 does not), else subspace
// iteration on K + 10. validate.cpp's memory estimate reads it too.
nystrom_options nystrom_route_options(const run_config& config);

// What a verified run of `config` moves to disk when it parks (route_state::park, and the
// finished D x rank basis: verified_state): `written`, an upper bound of the files' bytes (the
// state's largest save(): FD's 2l x D buffer, or Nyström's range sketch, test block and block
// Krylov's kept blocks; the class means; the basis; framing); `freed`, a lower bound of the
// memory they leave, as run_memory counts it (the buffer, or the D x (K + p + probes) range
// sketch alone; the class means; the basis). validate.cpp's check_verification reads both.
struct parked_size {
    long double written = 0.0L, freed = 0.0L;
};
parked_size parked_route_size(const run_config& config);

class route_state final : public stream_state {
public:
    explicit route_state(const run_config& config);

    std::uint64_t passes() const override { return config_.passes; }
    void update(const io::source_batch& b, std::uint64_t pass) override;
    void next_pass(const mpi_context& mpi) override;
    // --tolerance: after a sketch pass, the remaining sketch passes when the estimate is met.
    std::uint64_t passes_to_skip(std::uint64_t pass) override;
    // Sketch passes the state has accumulated (Nyström: its pass() + 1; 1 otherwise).
    std::uint64_t sketch_passes() const;
    std::uint64_t n() const override;
    std::string save() const override;
    void load(const std::string& bytes, const std::string& source) override;
    void save_to(state_sink& sink) const override;
    void load_from(const state_source& src) override;
    // Throws file_error when `src` (a run's state, without its jitter header) is a verified
    // run's (verified_state, monte_carlo_state): its numbers come from verification passes over
    // the data, so it is resumed with its input, never analysed as a sketch (--from).
    static void refuse_verified(const state_source& src);
    void reduce(const mpi_context& mpi) override;

    void merge(const stream_state& other) override;
    bool hold_whole() override { return whole_ = true; }
    const run_config& config() const noexcept { return config_; }

    // The state in an unlinked file in `dir` (io/spill.hpp) instead of memory, as save()'s
    // bytes: once its passes are over and finished, a verified run reads only the finished
    // statistics (docs/benchmarks-log.md "mem8": D x (rank + 20) doubles at 224x224x3, 0.33 GB). save(),
    // n() and sketch_passes() answer from the file and what was kept; every other use reads it
    // back first (unpark). No-op when parked; throws file_error with nothing changed.
    void park(const std::string& dir);
    void unpark();
    bool parked() const noexcept { return parked_ != nullptr; }

private:
    friend statistics finish_statistics(const route_state& s, centering c, bool second_moment, std::uint64_t extra);
    friend statistics finish_without_labels(const route_state& s, centering c);
    friend statistics finish_statistics(route_state&& s, centering c, std::uint64_t extra);
    friend spectrum finish_spectrum(route_state&& s, centering c);
    using sketch = std::variant<moment_accumulator, frequent_directions, nystrom_sketch>;
    run_config config_;
    sketch main_;
    std::optional<class_moments> classes_;  // with labels (absent in an older exact checkpoint's joint scatter)
    bool whole_ = false;                    // hold_whole: the next pass boundary takes rank 0's state
    // park(): save()'s bytes on disk (main_ and classes_ released meanwhile), their length, and
    // n() and sketch_passes() as they were. Copies share the file (read only).
    std::shared_ptr<const io::row_spill> parked_;
    std::uint64_t parked_bytes_ = 0, parked_n_ = 0, parked_passes_ = 0;
    std::string parked_save() const;
    void parked_save_to(state_sink& sink) const;
    // finish_statistics and finish_without_labels: `with_labels` false leaves the cross statistics out.
    static statistics finish_route(const route_state& s, centering c, bool second_moment, std::uint64_t extra,
                                   bool with_labels);
};

// The finished statistics every analysis reads: exact (one eigendecomposition), or the
// sketch's top --rank in the centering it was built with (the other one throws
// std::invalid_argument), with the cross statistics when labels were read. `second_moment`
// false: the exact route releases Sxx once decomposed (one D x D matrix less, for the
// analyses that read only the eigenpairs). The exact eigensolver may spend what
// solver_memory (validate.hpp) leaves beside the run's estimate plus `extra` bytes.
statistics finish_statistics(const route_state& s, centering c, bool second_moment = true, std::uint64_t extra = 0);
// The same without the cross statistics, for a run whose labels are read again by a
// verification pass (verify_plan::basis_reads_labels false): Sxy (C x D) is not formed beside
// the class sums (1.2 GB each for 1,000 classes at 224x224x3).
statistics finish_without_labels(const route_state& s, centering c);
// The same without the second moment, consuming the state at the end of a run: the exact
// route forms Sxx in the accumulator's own storage (finish(moment_accumulator&&, ...)), so
// with dsyevd the peak is the 3 D x D that require_memory estimates (4 without consuming).
statistics finish_statistics(route_state&& s, centering c, std::uint64_t extra = 0);
// The spectrum alone (`recalign spectrum`), consuming the state: the exact route's eigenvalues
// without eigenvectors (exact_eigenvalues: one D x D matrix at the peak, empty basis).
spectrum finish_spectrum(route_state&& s, centering c);

}  // namespace recalign::cli
