// The state of `denoise`: the alignment tracker (clean moments and every noise model,
// Monte-Carlo ones included), fed in the same pass through the driver, so that a Monte-Carlo
// estimate is checkpointed, resumed and sharded like the clean statistics, and one report
// shares one eigendecomposition of the clean statistics among all noises.
#pragma once

#include "recalign/align/tracker.hpp"
#include "stream_state.hpp"

namespace recalign::cli {

class tracker_state final : public stream_state {
public:
    explicit tracker_state(const tracker_options& options) : tracker_(options) {}
    explicit tracker_state(alignment_tracker tracker) : tracker_(std::move(tracker)) {}

    void update(const io::source_batch& b, std::uint64_t pass) override;
    std::uint64_t n() const override { return tracker_.n(); }
    std::string save() const override;
    void load(const std::string& bytes, const std::string& source) override;
    void reduce(const mpi_context& mpi) override;
    void merge(const stream_state& other) override;

    alignment_tracker& tracker() noexcept { return tracker_; }

private:
    alignment_tracker tracker_;
};

}  // namespace recalign::cli
