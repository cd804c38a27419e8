// The state of a sketch route with verification (MATH.md §7, issue 14): the route's sketch
// (and class statistics) and, for patch-masking noises, the exact patch blocks, all in the
// sketch passes; then one or more verification passes, each accumulating the restricted
// moments of a basis computed from what the previous passes found (restricted_moments).
// Every pass goes through the driver, so checkpoints, resume and signals work in every pass.
// Under mpirun and across `merge` the passes would need the merged sketch first: the
// commands refuse --verify there (the sketch passes alone run as before with --no-verify).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "recalign/align/patch_blocks.hpp"
#include "recalign/align/restricted_moments.hpp"
#include "route_state.hpp"

namespace recalign::cli {

// What a verification pass runs on: a basis from the finished sketch statistics, the patch
// blocks and the previous verification pass (null for the first).
using verification_basis = std::function<matrix_t(const statistics& sketch, const std::vector<patch_blocks>& blocks,
                                                  const restricted_statistics* previous)>;

struct verify_plan {
    centering center = centering::uncentered;
    std::vector<patch_blocks_options> blocks;  // accumulated in the first sketch pass
    std::size_t passes = 1;                    // verification passes after the sketch's
    verification_basis basis;
};

class verified_state final : public stream_state {
public:
    verified_state(const run_config& config, verify_plan plan);

    std::uint64_t passes() const override { return route_.passes() + plan_.passes; }
    void update(const io::source_batch& b, std::uint64_t pass) override;
    void next_pass() override;
    std::uint64_t passes_to_skip(std::uint64_t pass) override;
    std::uint64_t sketch_passes() const { return route_.sketch_passes(); }
    std::uint64_t n() const override { return route_.n(); }
    std::string save() const override;
    void load(const std::string& bytes, const std::string& source) override;
    void reduce(const mpi_context& mpi) override;
    void merge(const stream_state& other) override;

    // After the run: the sketch's statistics, the blocks, the last verification pass.
    statistics sketch() const { return finish_statistics(route_, plan_.center); }
    const std::vector<patch_blocks>& blocks() const noexcept { return blocks_; }
    restricted_statistics verified() const;
    // Wall seconds of each pass this process ran, up to now (a resumed run: 0 for the passes
    // done before; the pass it resumed in counts from the resume): for BENCHMARKS.md.
    std::vector<double> pass_seconds() const;

private:
    route_state route_;
    verify_plan plan_;
    std::vector<patch_blocks> blocks_;
    std::optional<restricted_moments> pass_state_;  // during and after the verification passes
    std::uint64_t pass_ = 0;                        // the current pass
    std::size_t classes_ = 0;
    std::vector<double> marks_;  // steady-clock seconds at the first batch of each pass
};

}  // namespace recalign::cli
