// The progress line of a streaming run, on stderr.
#pragma once

#include <chrono>
#include <cstdint>

namespace recalign::cli {

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

}  // namespace recalign::cli
