// Per-class first moments of inputs x (dimension D) labelled with class ids in [0, C): the
// counts n_c and the class means μ_c (C x D doubles, never D x D). For one-hot targets they
// give the cross statistics exactly, in either centering (MATH.md §1 with y = e_label):
//
//     uncentered  Sxy[:, c] = n_c μ_c,          Syy = diag(n_c)
//     centered    Sxy[:, c] = n_c (μ_c − μ),    Syy = diag(n_c) − n nᵀ / N,   μ = Σ_c n_c μ_c / N
//
// so a run whose Sxx comes from a sketch (O(D·rank)) keeps its label statistics in O(D·C).
// update() folds each class's rows in with Chan's rule (the class mean shifts by the sum of
// the rows' deviations from it over the new count); merge() is the same rule per class.
#pragma once

#include <cstdint>
#include <istream>
#include <ostream>
#include <vector>

#include "recalign/core/batch.hpp"
#include "recalign/core/serial.hpp"
#include "recalign/core/xt.hpp"
#include "recalign/stats/moments.hpp"

namespace recalign {

struct class_moments_options {
    std::size_t dim = 0;      // D
    std::size_t classes = 0;  // C
};

class class_moments {
public:
    static constexpr checkpoint::state_kind kind = checkpoint::state_kind::class_moments;

    // Throws std::invalid_argument for dim 0, classes 0, or a C x D state whose size
    // overflows (size_overflow, core/checked.hpp) or that a checkpoint could not describe.
    explicit class_moments(const class_moments_options& options);

    // Adds a batch (rows = samples, u8/f32/f64) and its class ids. `first_row` only labels
    // error messages. Strong guarantee: a batch of the wrong width, holding NaN/Inf, with a
    // label outside [0, C) or a label count other than its row count throws input_error
    // naming the row (first_row + r) and leaves the state exactly as before.
    void update(const batch_view& x, const target_view& labels, std::uint64_t first_row = 0);

    // Chan's rule per class. Merging an empty state is a no-op; another dimension or class
    // count throws std::invalid_argument naming both values, before any change.
    void merge(const class_moments& other);

    void save(std::ostream& os) const;
    static class_moments load(std::istream& is);

    std::uint64_t n() const noexcept { return n_; }
    std::size_t dim() const noexcept { return options_.dim; }
    std::size_t classes() const noexcept { return options_.classes; }
    bool empty() const noexcept { return n_ == 0; }
    std::uint64_t aux_dim() const noexcept { return options_.classes; }
    std::uint64_t config_hash() const;
    const class_moments_options& options() const noexcept { return options_; }

    // n_c, one per class.
    const std::vector<std::uint64_t>& counts() const noexcept { return counts_; }
    // C x D class means (a row of zeros for a class not seen yet).
    matrix_t means() const { return means_; }
    // Mean of every row seen, Σ_c n_c μ_c / N (zeros when empty).
    vector_t mean() const;
    // Sxy (D x C) and Syy (C x C) of the one-hot targets, as moment_accumulator::cross gives them.
    cross_moments cross(centering c) const&;
    // The same bits from a state that is consumed: the means' pages are given back to the system
    // as Sxy is formed, so the two are not both resident (C x D each: 1.2 GB at 1,000 classes and
    // 224x224x3). The object is then empty of data (no classes): assign to it or destroy it.
    cross_moments cross(centering c) &&;

    // Checkpoint payload (recalign/core/serial.hpp). Defined in lib/stats/class_moments_serial.cpp
    // and instantiated there for the archives the framing uses.
    template <class Archive>
    void save_payload(Archive& ar) const;
    template <class Archive>
    static class_moments load_payload(Archive& ar, checkpoint::budget& b);

private:
    // Checks a loaded configuration, and that the payload still holds the counts and means
    // it implies, before the constructor allocates them.
    static class_moments_options validated_options(std::uint64_t dim, std::uint64_t classes,
                                                   const checkpoint::budget& b);
    // A loaded state's invariants: shapes, finite means, zero rows for empty classes, N = Σ n_c.
    void check_loaded();

    class_moments_options options_;
    std::uint64_t n_ = 0;                 // Σ_c n_c
    std::vector<std::uint64_t> counts_;  // n_c
    matrix_t means_;                      // C x D, row c = μ_c
    // Per-batch scratch, never serialized, bounded whatever C is (a C x D scratch would be 1.2 GB
    // at ImageNet's 1,000 classes and 224x224x3): a bounded block of rows converted to double; the
    // sums of deviations from μ_c of at most 32 MiB of the batch's classes at a time; the batch's
    // labels as indices, the classes present in it, and its rows grouped by class (class c's rows
    // are by_class_[starts_[c] .. starts_[c + 1]), in row order; cursor_ fills them).
    std::vector<double> rows_, sums_;
    std::vector<std::size_t> labels_, present_, by_class_, starts_, cursor_;
};

}  // namespace recalign
