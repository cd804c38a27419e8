// Exact streaming first and second moments of inputs x (dimension D) and, optionally,
// targets y (dimension C): n, means, centered scatters Mxx, Mxy, Myy (MATH.md §1).
//
// The state is the joint scatter of z = [x; y] (P = D + C): Mxx, Mxy and Myy are its blocks,
// so that one SYRK over the batch laid out as [x | y] rows computes all three (the targets
// ride along in the SYRK at (P² − D²)/D² extra work, instead of a memory-bound GEMM pass
// over the batch). update() folds the batch in with Chan's rule; merge() is the same rule
// between two states; the uncentered sums (Sxx = Mxx + n μμᵀ, ...) are derived on request.
// Raw-moment subtraction (Σxxᵀ − nμμᵀ) is never used: it cancels catastrophically on image data.
#pragma once

#include <cstdint>
#include <istream>
#include <ostream>
#include <vector>

#include "recalign/core/batch.hpp"
#include "recalign/core/serial.hpp"
#include "recalign/core/xt.hpp"

namespace recalign {

enum class centering : std::uint8_t { centered = 1, uncentered = 2 };
const char* centering_name(centering c);

// tr(S) of the second moment in the requested centering from the exact centered trace:
// tr(M + n μμᵀ) = tr(M) + n‖μ‖². Shared by every route that tracks tr(M) exactly.
double trace_in(centering c, double centered_trace, std::uint64_t n, const vector_t& mean);

enum class target_mode : std::uint8_t {
    none = 0,       // inputs only
    class_ids = 1,  // integer labels in [0, classes), one-hot implied
    dense = 2,      // dense target rows of width `classes`
};

struct moment_options {
    std::size_t dim = 0;
    target_mode targets = target_mode::none;
    std::size_t classes = 0;  // C: number of classes, or width of dense targets
    // Opt-in: for float32 input compute the in-batch scatter with SSYRK (single precision)
    // and fold it into the double-precision state. About 2x faster; see BENCHMARKS.md for
    // its measured error. uint8 input (with class ids or no targets) takes an exact SSYRK
    // whatever this says: it runs on the integers x - 128 in groups of <= 1024 rows, where
    // every product and partial sum is an integer below 2^24, and the group's centered scatter
    // is formed from exact integer numerators; only the fold into the double state rounds.
    // Not part of the configuration: states with and without it merge.
    bool float32_kernels = false;
};

// Cross statistics of the targets, as an analysis needs them (centered or not).
// Syy is stored as what it is: dense (C x C) for dense targets, or for one-hot class ids only
// the class counts n_c, with Syy = diag(n_c), minus n nᵀ / N when centered (MATH.md §1) — so
// that C = 20,000 classes cost C numbers, not C² (issue 12). Read Syy through the methods.
struct cross_moments {
    centering center = centering::uncentered;
    std::uint64_t n = 0;
    matrix_t sxy;          // D x C
    matrix_t syy;          // C x C for dense targets; empty when class_counts describes Syy
    vector_t class_counts; // n_c for class ids (then syy is empty)

    std::size_t classes() const noexcept { return sxy.shape(1); }
    bool one_hot() const noexcept { return syy.size() == 0 && class_counts.size() != 0; }
    // A Syy for A (rows x C, row-major), without forming Syy.
    matrix_t times_syy(const matrix_t& a) const;
    double syy_trace() const;
    double syy_frobenius2() const;  // ‖Syy‖_F²
    matrix_t syy_dense() const;     // C x C (for small C: tests, Python)
};

class moment_accumulator {
public:
    static constexpr checkpoint::state_kind kind = checkpoint::state_kind::moments;

    explicit moment_accumulator(const moment_options& options);

    // Adds a batch (rows = samples). With targets configured, every batch must carry them.
    // `first_row` only labels error messages (e.g. the batch's position in a file).
    // Strong guarantee: if the batch is rejected (width, NaN/Inf, label range, row count),
    // std::invalid_argument is thrown and the state is exactly as before.
    void update(const batch_view& x, std::uint64_t first_row = 0);
    void update(const batch_view& x, const target_view& y, std::uint64_t first_row = 0);

    // Chan's parallel rule. Merging an empty state is a no-op; incompatible states
    // (dimension, target mode, classes) throw std::invalid_argument before any change.
    void merge(const moment_accumulator& other);

    // A state from its parts: n, the joint mean [mean_x; mean_y] (length P = D + C) and the
    // joint centered scatter (P x P, upper triangle authoritative), for reductions that compute
    // them elsewhere (dist/mpi.hpp: MATH.md §1 as a two-stage sum). Throws
    // std::invalid_argument for wrong shapes or non-finite values.
    static moment_accumulator from_parts(const moment_options& options, std::uint64_t n, vector_t mean_z,
                                         matrix_t scatter_upper);

    void save(std::ostream& os) const { checkpoint::save_state(os, *this); }
    static moment_accumulator load(std::istream& is) { return checkpoint::load_state<moment_accumulator>(is); }

    std::uint64_t n() const noexcept { return n_; }
    std::size_t dim() const noexcept { return options_.dim; }
    std::size_t classes() const noexcept { return options_.classes; }
    std::uint64_t aux_dim() const noexcept { return options_.classes; }
    bool empty() const noexcept { return n_ == 0; }
    bool has_targets() const noexcept { return options_.targets != target_mode::none; }
    const moment_options& options() const noexcept { return options_; }
    std::uint64_t config_hash() const;

    vector_t mean_x() const;
    vector_t mean_y() const;
    // Full symmetric D x D second moment, centered (Mxx) or uncentered (Sxx = XXᵀ).
    matrix_t sxx(centering c) const;
    // The same, formed in the accumulator's own storage when it holds no targets (no copy:
    // at D = 24,576 one 4.8 GB matrix less at the end of a run), else as sxx(c) with the
    // joint scatter released after. Bitwise equal to sxx(c). The accumulator is left moved-from:
    // only destroy or assign it.
    matrix_t release_sxx(centering c) &&;
    // D x C and C x C cross statistics; throws std::logic_error without targets.
    matrix_t sxy(centering c) const;
    matrix_t syy(centering c) const;
    cross_moments cross(centering c) const;
    // tr(Sxx) (total variance times n when centered), without forming the matrix.
    double trace_xx(centering c) const;
    // diag(Sxx) (per-feature variance times n when centered), without forming the matrix.
    vector_t diag_xx(centering c) const;

    // Raw state: the joint (P x P) centered scatter of z = [x; y], upper triangle
    // authoritative, for tests and serialization.
    const matrix_t& scatter_upper() const noexcept { return mzz_; }

    // The checkpoint payload (recalign/core/serial.hpp), defined in lib/stats/moments_serial.cpp.
    template <class Archive>
    void save_payload(Archive& ar) const;
    template <class Archive>
    static moment_accumulator load_payload(Archive& ar, checkpoint::budget& b);

private:
    // Checks a loaded configuration and that the payload can hold its arrays, before the
    // constructor allocates them.
    static moment_options validated_options(std::uint64_t dim, std::uint8_t mode, std::uint64_t classes,
                                            std::uint8_t f32, const checkpoint::budget& b);
    void check_shapes() const;
    // The uint8 path of float32_kernels (lib/stats/moments_u8.cpp); targets already in yb_.
    void update_u8_exact(const batch_view& x, std::uint64_t first_row);
    std::size_t joint_dim() const noexcept { return options_.dim + options_.classes; }
    // Upper-triangle block (rows r0.., cols c0..) of the joint scatter, plus n·a bᵀ when
    // uncentered, as a dense matrix (symmetrised when it is a diagonal block).
    matrix_t block(std::size_t r0, std::size_t rows, std::size_t c0, std::size_t cols, centering c) const;

    moment_options options_;
    std::uint64_t n_ = 0;
    vector_t mean_z_;  // [mean_x; mean_y]
    matrix_t mzz_;     // centered joint scatter of [x; y], upper triangle
    // Per-batch scratch, never serialized (a resumed run re-creates it).
    std::vector<double> zb_, yb_;
    std::vector<float> zf_, sf_;
};

}  // namespace recalign
