// The accumulator behind a CLI run, chosen by --method: the exact moment accumulator, a
// Frequent Directions sketch or a Nyström sketch. One interface for the commands: update
// with a source batch, merge, save/load as bytes, passes, and the spectrum / cross
// statistics the analyses need.
//
// With a sketch, the label statistics (Sxy, Syy) are kept by `class_sums`: per-class counts
// and means (D x C doubles, never D x D), from which Sxy and Syy follow exactly for one-hot
// targets in either centering. It is the one accumulator of the CLI itself; it belongs in
// stats/ if the library wants it (see the report of issue 5).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "recalign/io/source.hpp"
#include "recalign/sketch/frequent_directions.hpp"
#include "recalign/sketch/nystrom_sketch.hpp"
#include "recalign/spectral/statistics.hpp"
#include "recalign/stats/moments.hpp"
#include "run_state.hpp"

namespace recalign::cli {

bool method_available(const std::string& method);

// Per-class counts and means of the rows (MATH.md §1 for one-hot targets):
// uncentered Sxy[:, c] = n_c μ_c, Syy = diag(n_c); centered Sxy[:, c] = n_c (μ_c − μ),
// Syy = diag(n_c) − n nᵀ / N. Means are folded in per batch (Chan's rule per class).
class class_sums {
public:
    class_sums(std::size_t dim, std::size_t classes);
    // Labels must already be range-checked (the sketch's update validates the rows). The rows
    // are read in their own type, times x.scale (to_double_checked).
    void update(const batch_view& x, const std::int64_t* labels, std::uint64_t first_row);
    void merge(const class_sums& other);
    cross_moments cross(centering c) const;
    std::string save() const;
    static class_sums load(const std::string& bytes, std::size_t dim, std::size_t classes, const std::string& source);

private:
    std::size_t dim_, classes_;
    std::vector<std::uint64_t> count_;
    std::vector<double> mean_;  // classes x dim
    std::vector<double> x_, sum_;  // scratch: the batch as scaled doubles, per-class sums
    std::vector<std::uint64_t> batch_count_;
};

class engine {
public:
    explicit engine(const run_config& config);

    const run_config& config() const noexcept { return config_; }
    // Adds a batch; bad data (NaN, label out of range) throws std::invalid_argument naming the row.
    // `pass` > 0 (later Nyström passes) feeds only the sketch.
    void update(const io::source_batch& b, std::uint64_t pass = 0);
    void merge(const engine& other);
    std::string save() const;
    void load(const std::string& bytes, const std::string& source);
    std::uint64_t n() const;
    // Ends a pass of a multi-pass sketch (Nyström power iteration).
    void next_pass();

    bool exact() const noexcept { return moments_.has_value(); }
    // Spectrum with centering c: exact (full) or the sketch's top `rank` (whose centering is
    // fixed when it is built: asking for the other one throws std::invalid_argument).
    spectrum get_spectrum(centering c) const;
    cross_moments cross(centering c) const;
    // The finished statistics every analysis reads (one eigendecomposition for the exact route).
    statistics finish(centering c) const;
    // Mean of the rows (for centered projections).
    vector_t mean() const;
    // The exact accumulator (throws std::invalid_argument for a sketch run).
    const moment_accumulator& moments() const;

private:
    void check_centering(centering c) const;
    run_config config_;
    std::optional<moment_accumulator> moments_;
    std::optional<frequent_directions> fd_;
    std::optional<nystrom_sketch> nystrom_;
    std::optional<class_sums> classes_;
};

}  // namespace recalign::cli
