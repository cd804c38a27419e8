// The accumulator behind a CLI run, chosen by --method: the exact moment accumulator (and,
// once the sketches are available, Frequent Directions or Nyström). One interface for the
// commands: update with a source batch, merge, save/load as bytes, and the spectrum.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "recalign/io/source.hpp"
#include "recalign/spectral/spectrum.hpp"
#include "recalign/stats/moments.hpp"
#include "run_state.hpp"

namespace recalign::cli {

// Names the methods this build can run ("exact" always).
bool method_available(const std::string& method);

class engine {
public:
    explicit engine(const run_config& config);

    const run_config& config() const noexcept { return config_; }
    // Adds a batch; bad data (NaN, label out of range) throws input_error naming the file row.
    void update(const io::source_batch& b);
    void merge(const engine& other);
    std::string save() const;
    // Replaces the state by the one in `bytes` (a framed accumulator checkpoint).
    void load(const std::string& bytes, const std::string& source);
    std::uint64_t n() const;

    // Spectrum of the second-moment matrix with the given centering (exact: full; sketches:
    // their rank).
    spectrum get_spectrum(centering c) const;
    // The exact accumulator (throws std::logic_error for a sketch run).
    const moment_accumulator& moments() const;

private:
    run_config config_;
    std::optional<moment_accumulator> moments_;
};

}  // namespace recalign::cli
