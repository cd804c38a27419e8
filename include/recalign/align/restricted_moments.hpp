// The verification pass of MATH.md §7: given a basis V (D x K) found from a sketch, one more
// pass over the data accumulates, exactly,
//
//     Vᵀ Sxx V = Σ z zᵀ (K x K),   Sxx V = Σ x zᵀ (D x K),   Vᵀ Sxy, Syy (per-class means of z),
//
// with z = Vᵀ x, so that every number reported about the representation V is exact for V
// (Rayleigh–Ritz refinement on span V, the nested fit of its alignment, its trade-off
// losses), however approximate the sketch that found V. Memory O(D·K + K·C).
//
// An accumulator like every other (update, merge, checkpoints, strong guarantee): n, the mean
// of x, and the centered scatters M V and Vᵀ M V, folded in with the moment accumulator's
// exact shift-and-Chan scheme (MATH.md §1); V is part of the configuration.
#pragma once

#include <cstdint>
#include <istream>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "recalign/core/batch.hpp"
#include "recalign/core/serial.hpp"
#include "recalign/core/xt.hpp"

namespace recalign::detail {
class second_thread;  // lib/sketch/second_thread.hpp (internal): the update's conversions on two threads
}
#include "recalign/stats/class_moments.hpp"
#include "recalign/stats/moments.hpp"

namespace recalign {

class patch_blocks;
struct gram_solve_cache;  // recalign/align/sketch_denoising.hpp
namespace io {
class row_spill;
}

// Vᵀ Bd V of one set of patch blocks, known for V's leading columns (leading: a x a) without
// another sweep over the blocks (verification.hpp, restricted_blocks). The blocks are named by
// what every analysis checks of them against the statistics (their geometry and patch size, D
// and n), not by their address: a checkpoint or Python's bytes carry it, and blocks loaded with
// the rest of a run find it again.
struct known_blocks {
    std::uint64_t geometry = 0;  // patch_blocks::config_hash()
    std::uint64_t dim = 0, n = 0;
    matrix_t leading;
    static known_blocks of(const patch_blocks& blocks, matrix_t leading);
    bool is_of(const patch_blocks& blocks) const;
};

// What the verification pass knows about the representation V, finished (the analogue of
// spectral/statistics.hpp for a fixed basis): every analysis of V reads only this.
struct restricted_statistics {
    centering center = centering::uncentered;
    std::uint64_t n = 0;
    matrix_t basis;  // V: D x K
    matrix_t vsv;    // Vᵀ Sxx V: K x K
    matrix_t sv;     // Sxx V: D x K
    std::optional<cross_moments> cross;  // sxy = Vᵀ Sxy (K x C), syy = Syy
    // The pass's products (products()): Vᵀ V and (Sxx V)ᵀ(Sxx V), K x K, exact; empty until then.
    matrix_t gram, svsv;
    // Statistics in a pass's coordinates (coordinates()): V = Q W for the pass's basis Q, whose
    // Gram matrix Qᵀ Q is `frame`; basis and sv stay empty (no D x K copy), `coords` is W.
    std::shared_ptr<const matrix_t> frame;
    matrix_t coords;
    std::size_t frame_dim = 0;
    // Vᵀ Bd V of patch blocks as far as already known: one restart's masks of one patch size
    // share it, and a restart hands Rᵀ Bd R = Cᵀ (Qᵀ Bd Q) C on to the next pass, which sweeps
    // the blocks over its new directions only (denoising_restart). Not rotated by rotated() or
    // coordinates(); empty is always right (computed in full). Carried across passes, it is part
    // of the run's state: the CLI's checkpoint and Python's DenoisingRefinement bytes hold it,
    // so a resumed run rounds as one that did not stop.
    std::vector<known_blocks> blocks_known;
    // Sxx V on disk instead of in `sv` (empty meanwhile): an incremental refinement's restart
    // and the analyses after it read it a block of rows at a time (sv_rows; docs/benchmarks-log.md
    // "mem224"). Copies share the file (read only).
    std::shared_ptr<const io::row_spill> sv_stored;
    // The preconditioner's factors (sketched_gram_solve), the same every restart of one run:
    // denoising_restart makes it and hands it on to the next pass. A cache like blocks_known,
    // not serialised (a resumed run forms the same bits again); copies share it.
    std::shared_ptr<gram_solve_cache> gram_solves;
    // Rows r0 .. r0 + n of Sxx V (K doubles each, contiguous) into `out`, from memory or disk.
    void sv_rows(std::size_t r0, std::size_t n, double* out) const;
    // Sxx V back in `sv` (no-op when it is there); throws file_error with nothing changed.
    void load_sv();
    // Sxx V to an unlinked file in `dir` (no-op when it is there; `sv` freed); throws file_error
    // with nothing changed. Needs products() first (gram and svsv are not formed from disk).
    void spill_sv(const std::string& dir);
    bool in_coordinates() const noexcept { return frame != nullptr && basis.size() == 0; }
    std::size_t dim() const noexcept { return in_coordinates() ? frame_dim : basis.shape(0); }
    std::size_t k() const noexcept { return in_coordinates() ? vsv.shape(0) : basis.shape(1); }
    // The statistics of V W (W: K x K'), exactly, without reading the data again.
    restricted_statistics rotated(const matrix_t& w) const;
    // Fills gram and svsv (two D x K x K products, once; call it after any rescaling of sv).
    // From then on the Ritz steps of verification.hpp return their results in this pass's
    // coordinates (m x m products only, MATH.md §7) instead of rotated D x K copies.
    void products();
    // The statistics of V W in the pass's coordinates: vsv, cross, gram, svsv rotated (K' x K'),
    // coords = W (composed when these statistics are already in coordinates). Needs products().
    restricted_statistics coordinates(const matrix_t& w) const;
};

// The statistics of [R, T] from those of R and of a pass on T alone, over the same rows and in
// the same centering (incremental refinement passes: R = Q W, Ritz vectors of an earlier pass on
// Q, whose Sxx R = (Sxx Q) W is exact without reading the data; only the new directions T are
// read). Rᵀ Sxx T = (Sxx R)ᵀ T, from exactly accumulated products. Throws
// std::invalid_argument for statistics of other data (D, n, centering, labels) or in coordinates.
restricted_statistics joined(const restricted_statistics& r, const restricted_statistics& t);

struct restricted_moments_options {
    matrix_t basis;           // V: D x K, any full-column-rank basis (finite)
    std::size_t classes = 0;  // C: class ids with every batch (0: no labels)
};

class restricted_moments {
public:
    static constexpr checkpoint::state_kind kind = checkpoint::state_kind::restricted_moments;

    // Throws std::invalid_argument for an empty or non-finite basis or sizes that overflow.
    explicit restricted_moments(restricted_moments_options options);

    // Adds a batch (rows = samples of D values, any dtype) and, when configured, its class ids.
    // Strong guarantee: a bad batch (width, NaN/Inf, label range, missing labels) throws
    // naming the row (first_row + r) and changes nothing.
    void update(const batch_view& x, std::uint64_t first_row = 0);
    void update(const batch_view& x, const target_view& labels, std::uint64_t first_row = 0);
    // Chan's rule. Merging an empty state is a no-op; another basis (compared bit for bit) or
    // class count throws std::invalid_argument, before any change.
    void merge(const restricted_moments& other);

    void save(std::ostream& os) const { checkpoint::save_state(os, *this); }
    static restricted_moments load(std::istream& is) { return checkpoint::load_state<restricted_moments>(is); }

    std::uint64_t n() const noexcept { return n_; }
    std::size_t dim() const noexcept { return options_.basis.shape(0); }
    std::size_t k() const noexcept { return options_.basis.shape(1); }
    std::uint64_t aux_dim() const noexcept { return k(); }
    bool empty() const noexcept { return n_ == 0; }
    const restricted_moments_options& options() const noexcept { return options_; }
    std::uint64_t config_hash() const;

    const matrix_t& basis() const noexcept { return options_.basis; }
    vector_t mean() const { return mean_; }
    // Vᵀ Sxx V (K x K, symmetric) and Sxx V (D x K) in centering c.
    matrix_t vsv(centering c) const;
    matrix_t sv(centering c) const;
    // Vᵀ Sxy (K x C) and Syy (C x C); throws std::logic_error without labels.
    cross_moments cross(centering c) const;
    bool has_labels() const noexcept { return labels_.has_value(); }
    restricted_statistics finish(centering c) const&;
    // The same, moving V and M V out of the accumulator instead of copying them (2 D x K
    // doubles fewer at the peak); the accumulator is left spent: no columns (dim() and k() 0), so
    // every batch is refused.
    restricted_statistics finish(centering c) &&;

    template <class Archive>
    void save_payload(Archive& ar) const;
    template <class Archive>
    static restricted_moments load_payload(Archive& ar, checkpoint::budget& b);

private:
    void commit(const batch_view& x, const double* sum, const double* shift, const double* mz,
                detail::second_thread& two, bool halves);
    void check_loaded() const;

    restricted_moments_options options_;
    std::uint64_t n_ = 0;
    vector_t mean_;   // D
    matrix_t mzz_;    // K x K: Vᵀ M V, upper triangle authoritative
    matrix_t mxz_;    // D x K: M V
    std::optional<class_moments> labels_;  // per-class means of z (K x C)
    // Scratch, never serialized.
    std::vector<double> xs_, zs_;
    std::vector<double> xs1_, zs1_;  // the second half's column block and part of z̃ (update's halves)
};

}  // namespace recalign
