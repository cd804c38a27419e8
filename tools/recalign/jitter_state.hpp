// --jitter S --seed N: adds S · N(0, 1) to every value of every row (after --scale) before the
// wrapped state sees it — the authors' "small amount of noise to avoid degenerate issues"
// (MATH.md §8). The noise of value j of file row r is the j-th normal of the counter-based
// stream (seed, tag, r) (core/rng.hpp), so a resumed, merged or MPI-sharded run adds exactly
// the numbers an uninterrupted one does. Its checkpoint bytes carry a tagged (S, seed) in front of
// the wrapped state's: --resume refuses a checkpoint of another jitter (or of none).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "stream_state.hpp"

namespace recalign::cli {

class jitter_state final : public stream_state {
public:
    jitter_state(stream_state& inner, double sigma, std::uint64_t seed) : inner_(inner), sigma_(sigma), seed_(seed) {}

    std::uint64_t passes() const override { return inner_.passes(); }
    void update(const io::source_batch& b, std::uint64_t pass) override;
    void next_pass(const mpi_context& mpi) override { inner_.next_pass(mpi); }
    std::uint64_t passes_to_skip(std::uint64_t pass) override { return inner_.passes_to_skip(pass); }
    bool reads(std::uint64_t pass) const override { return inner_.reads(pass); }
    std::uint64_t passes_read() const override { return inner_.passes_read(); }  // a stopped refinement reads nothing
    std::uint64_t n() const override { return inner_.n(); }
    std::string save() const override;
    void load(const std::string& bytes, const std::string& source) override;
    void save_to(state_sink& sink) const override;
    void load_from(const state_source& src) override;
    void reduce(const mpi_context& mpi) override { inner_.reduce(mpi); }
    bool hold_whole() override { return inner_.hold_whole(); }
    void merge(const stream_state& other) override;

private:
    stream_state& inner_;
    double sigma_;
    std::uint64_t seed_;
};

// A state's checkpoint bytes without the jitter header, when they carry one: what the jitter
// added is in the accumulated numbers, so --from and merge analyse such a state as any other.
std::string without_jitter_header(const std::string& bytes);
state_source without_jitter_header(const state_source& bytes);

// The (--jitter, --seed) a state's checkpoint bytes carry ({0, 0}: none).
std::pair<double, std::uint64_t> jitter_of(const std::string& bytes);

// A jitter_state around `inner` (kept in `holder`). With sigma 0 it passes batches and bytes
// through unchanged, and only refuses to resume a jittered checkpoint without the jitter.
stream_state& with_jitter(stream_state& inner, double sigma, std::uint64_t seed, std::unique_ptr<jitter_state>& holder);

}  // namespace recalign::cli
