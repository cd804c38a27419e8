// DenoisingRefinement's state (bind_refinement.cpp) and its bytes: written to a sink as they are
// made, the matrices of a pass being read copied from their spill files by blocks, and read
// from bytes in memory or from a range of an open checkpoint file, that pass's D x K matrices
// straight into spill files: a checkpoint of recalign.VerifiedDenoising holds no copy of itself
// in memory beside the state (the CLI's verified_state.cpp does the same with its own framing).
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "recalign/align/incremental_refinement.hpp"
#include "recalign/core/xt.hpp"

namespace recalign::python {

struct refinement_state {
    std::optional<refinement_pass> next;          // the pass being read: R known, T read
    std::optional<restricted_statistics> final_;  // the result, once the passes ended
    vector_t curves;                              // the last restart's stopping curves
    double change = std::numeric_limits<double>::quiet_NaN();
    double estimate = std::numeric_limits<double>::quiet_NaN();  // the last restart's refinement_estimate
    vector_t changes, estimates;  // every restart's change and estimate, in turn
    std::uint64_t passes = 0;  // refinement passes started (each reads its new directions T)
    bool stopped = false;      // the adaptive stop (or nothing new to read) ended the passes
};

// Where the bytes go: called with each piece in turn; empty: only counted.
using byte_sink = std::function<void(const char*, std::size_t)>;
// Writes r's bytes to `out` (nothing when empty) and returns how many there are.
std::uint64_t write_refinement(const refinement_state& r, const byte_sink& out);
std::string refinement_bytes(const refinement_state& r);

// Bytes to read: in memory (`fd` < 0), or [`at`, `at` + `size`) of the open file `fd`. Errors are
// file_error naming `source` at `at` plus the offset in the bytes.
struct refinement_source {
    std::string_view bytes;
    int fd = -1;
    std::uint64_t at = 0, size = 0;
    std::string source;
};
refinement_state read_refinement(const refinement_source& src);

}  // namespace recalign::python
