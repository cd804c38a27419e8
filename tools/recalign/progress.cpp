#include "progress.hpp"

#include <cmath>
#include <cstdio>

namespace recalign::cli {

progress::progress(bool enabled, std::uint64_t total, std::uint64_t start)
    : on_(enabled), total_(total), start_(start), t0_(std::chrono::steady_clock::now()), last_(t0_) {}

void progress::update(std::uint64_t done) {
    if (!on_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(250) && done < total_) return;
    last_ = now;
    const double secs = std::chrono::duration<double>(now - t0_).count();
    const double rate = secs > 0 ? static_cast<double>(done - start_) / secs : 0.0;
    char eta[32] = "?";
    if (rate > 0) {
        const double left = static_cast<double>(total_ - done) / rate;
        if (left < 120) std::snprintf(eta, sizeof eta, "%.0fs", left);
        else if (left < 7200) std::snprintf(eta, sizeof eta, "%.0fm%02.0fs", std::floor(left / 60), std::fmod(left, 60));
        else std::snprintf(eta, sizeof eta, "%.1fh", left / 3600);
    }
    std::fprintf(stderr, "\r%llu/%llu samples  %.0f samples/s  ETA %s   ", (unsigned long long)done,
                 (unsigned long long)total_, rate, eta);
    std::fflush(stderr);
    drawn_ = true;
}

void progress::finish() {
    if (on_ && drawn_) std::fprintf(stderr, "\r\033[K");
    drawn_ = false;
}

}  // namespace recalign::cli
