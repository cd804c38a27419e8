// Noise models of the denoising analysis (MATH.md §4, the paper's Theorem 3 and Section 6.4):
// the two expectations the optimal denoising encoder needs,
//
//     Bs = Σ E[x'] xᵀ        G = Σ E[x' x'ᵀ]        (D x D, sums over the samples),
//
// either in closed form — a pure function of the clean second moment Sxx, so it is exactly
// as incremental, mergeable and checkpointable as the moment accumulator it reads — or by
// Monte Carlo for any corruption a user can write (`monte_carlo_noise`).
#pragma once

#include <cstdint>
#include <functional>
#include <istream>
#include <ostream>
#include <string>
#include <vector>

#include "recalign/core/batch.hpp"
#include "recalign/core/checked.hpp"
#include "recalign/core/rng.hpp"
#include "recalign/core/serial.hpp"
#include "recalign/core/xt.hpp"
#include "recalign/stats/moments.hpp"

namespace recalign {

enum class noise_family : std::uint8_t {
    gaussian = 1,  // x' = x + σ ε, ε ~ N(0, I)
    dropout = 2,   // x' = m ⊙ x, every coordinate kept independently with probability 1 − ratio
    mask = 3,      // x' = m ⊙ x, patches of an image dropped (all channels of a pixel together)
};
enum class mask_scheme : std::uint8_t {
    bernoulli = 1,    // each patch dropped independently with probability `ratio`
    fixed_count = 2,  // MAE: exactly m = ⌊P (1 − ratio)⌋ of the P patches kept, uniformly
};

const char* noise_family_name(noise_family f);
const char* mask_scheme_name(mask_scheme s);

// Shape of the images a flat row of D = H·W·C values holds, and in which order.
struct image_shape {
    std::size_t height = 0, width = 0, channels = 1;
    image_layout layout = image_layout::hwc;
    // H·W·C, checked: a shape read from a checkpoint or a spec may claim extents whose
    // product wraps to the data's D (throws size_overflow instead).
    std::size_t dim() const { return checked_product({height, width, channels}, "image shape H x W x C"); }
    bool empty() const noexcept { return height == 0 || width == 0 || channels == 0; }
};

// One noise model. `draws` = 0 means "closed form"; draws > 0 asks the tracker for a
// Monte-Carlo estimate of the same model with that many corruptions per sample.
struct noise_spec {
    noise_family family = noise_family::gaussian;
    double sigma = 0.0;  // gaussian
    double ratio = 0.0;  // dropout / mask: probability of dropping (a coordinate / a patch)
    std::size_t patch_h = 1, patch_w = 1;  // mask
    mask_scheme scheme = mask_scheme::bernoulli;
    image_shape shape;  // mask: optional here (shape=HxWxC, layout=hwc|chw); else from context
    std::size_t draws = 0;
    std::uint64_t seed = 0;
};

// Parses "gaussian:sigma=0.1", "dropout:ratio=0.3",
// "mask:patch=2x2,ratio=0.5,scheme=fixed[,shape=28x28x1,layout=hwc][,draws=64,seed=7]".
// Keys: sigma, ratio, patch (PHxPW or P), scheme (bernoulli|fixed), shape (HxW or HxWxC),
// layout (hwc|chw), draws, seed. Throws std::invalid_argument naming the bad part.
noise_spec parse_noise_spec(const std::string& text);
// The canonical text of a spec (parse_noise_spec(to_string(s)) == s).
std::string to_string(const noise_spec& s);
// Checks the values (ranges, a mask has a patch no larger than needed, ...); throws
// std::invalid_argument. `shape` (if not empty) must match the spec's own shape if it has one.
void validate(const noise_spec& s);

// The two expectations, summed over the samples (uncentered unless the clean Sxx given to
// the closed form was centered: then masked coordinates are read as "replaced by the mean").
struct noise_moments {
    std::uint64_t n = 0;
    matrix_t bs;  // Σ E[x'] xᵀ
    matrix_t g;   // Σ E[x' x'ᵀ]
};

// Which patch every flat index belongs to, for K ⊙ Sxx without forming K: K_ij takes one
// value when i and j share a patch and another when they do not (MATH.md §4).
struct patch_map {
    std::vector<std::uint32_t> patch_of;  // length D
    std::size_t patches = 0;              // P = ⌈H/ph⌉ ⌈W/pw⌉ (edge patches may be partial)
};
patch_map make_patch_map(const image_shape& shape, std::size_t patch_h, std::size_t patch_w);

// Keep probabilities of a data-independent mask: q = P(keep i), k_same = P(keep i and j)
// for i, j in one patch (i ≠ j), k_diff for i, j in different patches.
struct keep_probabilities {
    double q = 1.0, k_same = 1.0, k_diff = 1.0;
    std::size_t kept_patches = 0;  // fixed count: m
};
keep_probabilities mask_keep_probabilities(const noise_spec& s, std::size_t patches);

// Closed forms of MATH.md §4 from the clean second moment (symmetric, D x D) and n:
// gaussian: Bs = Sxx, G = Sxx + nσ²I; dropout / mask: Bs = q Sxx, G = K ⊙ Sxx.
// `shape` gives the image geometry of a mask whose spec has none.
noise_moments closed_form_noise(const noise_spec& s, const matrix_t& sxx, std::uint64_t n,
                                const image_shape& shape = {});

// The masking closed form's constants without Bs or G: Bs = q Sxx and G_ij = Sxx_ij K_ij with
// K_ij = k_same where patch_of[i] == patch_of[j] (the diagonal too), k_diff elsewhere.
struct mask_kernel {
    patch_map map;
    keep_probabilities keep;
    double operator()(std::size_t i, std::size_t j) const {
        return map.patch_of[i] == map.patch_of[j] ? keep.k_same : keep.k_diff;
    }
};
// For a dropout or mask spec (std::invalid_argument for Gaussian) on rows of D values.
mask_kernel masking_kernel(const noise_spec& s, std::size_t d, const image_shape& shape = {});

// --- Monte Carlo -------------------------------------------------------------------------

// What a corruption function gets for one draw of one batch. Randomness must be a function
// of this key only (counter-based), so a resumed or re-batched run draws the same noise:
// row_stream(r) is the stream of global row first_row + r for this draw.
struct noise_key {
    std::uint64_t seed = 0;
    std::uint64_t batch = 0;      // index of the batch within this accumulator's stream
    std::uint64_t draw = 0;       // 0 .. draws-1
    std::uint64_t first_row = 0;  // global index of the batch's first row
    rng::stream row_stream(std::size_t r) const { return rng::stream(seed, first_row + r, draw); }
};

// Writes corrupted rows into `out` (same shape as `clean`, already allocated).
using corrupt_fn = std::function<void(const matrix_t& clean, matrix_t& out, const noise_key& key)>;

// The corruption of a built-in family, drawn per row from key.row_stream (so the noise of a
// sample depends only on (seed, its global row, draw), not on how the stream was batched).
corrupt_fn make_corrupter(const noise_spec& s, const image_shape& shape = {});

struct monte_carlo_options {
    std::size_t dim = 0;
    std::size_t draws = 16;      // S corruptions per sample
    std::size_t replicates = 2;  // independent groups of draws for the standard error; divides S
    std::uint64_t seed = 0;
    std::string name;            // identifies the noise model: part of the configuration hash
};

struct monte_carlo_estimate {
    noise_moments moments;  // Bs, G: averages over the S draws, summed over samples
    matrix_t bs_stderr;     // per-entry standard error (from the spread of the replicates)
    matrix_t g_stderr;
    double bs_stderr_fro = 0.0;  // sqrt(Σ se²): the expected Frobenius error of the estimate
    double g_stderr_fro = 0.0;
};

// Sums are uncentered (x' and x as given): centered analyses use the closed forms.
class monte_carlo_noise {
public:
    static constexpr checkpoint::state_kind kind = checkpoint::state_kind::noise;

    monte_carlo_noise(const monte_carlo_options& options, corrupt_fn corrupt);

    // Corrupts the batch S times (key: seed, batch index = batches so far, draw, first_row)
    // and adds x'_sᵀ x and x'_sᵀ x'_s per draw (one GEMM + one SYRK each). first_row defaults
    // to n() (rows seen so far); pass the global index when shards of one stream are merged.
    // Strong guarantee: a bad batch (width, NaN/Inf) or a failing corruption (throws, wrong
    // shape, non-finite output) leaves the state as it was.
    void update(const batch_view& x);
    void update(const batch_view& x, std::uint64_t first_row);

    // Sums; incompatible configurations (dim, draws, replicates, seed, name) throw
    // std::invalid_argument naming both values before anything changes.
    void merge(const monte_carlo_noise& other);

    void save(std::ostream& os) const { checkpoint::save_state(os, *this); }
    // The corruption function is code, not state: give it again (an object loaded without
    // one can merge and report, and update() throws std::logic_error).
    static monte_carlo_noise load(std::istream& is, corrupt_fn corrupt = {});
    void set_corrupter(corrupt_fn corrupt) { corrupt_ = std::move(corrupt); }

    std::uint64_t n() const noexcept { return n_; }
    std::uint64_t batches() const noexcept { return batches_; }
    std::size_t dim() const noexcept { return options_.dim; }
    std::uint64_t aux_dim() const noexcept { return options_.draws; }
    bool empty() const noexcept { return n_ == 0; }
    const monte_carlo_options& options() const noexcept { return options_; }
    std::uint64_t config_hash() const;

    monte_carlo_estimate estimate() const;
    // The same estimate consuming the sums (the end of a run): Bs and G are formed in the first
    // replicate's storage and the other sums released, with no copy (estimate() adds R + 4
    // D x D beside the 2 R sums); the same bits for Bs, G and the two Frobenius errors; the
    // per-entry errors are not kept (bs_stderr, g_stderr empty). Leaves this object empty.
    monte_carlo_estimate release_estimate() &&;

    // The checkpoint payload (recalign/core/serial.hpp), defined in lib/align/noise_serial.cpp.
    template <class Archive>
    void save_payload(Archive& ar) const;
    template <class Archive>
    static monte_carlo_noise load_payload(Archive& ar, checkpoint::budget& b);

private:
    static monte_carlo_options validated_options(std::uint64_t dim, std::uint64_t draws, std::uint64_t reps,
                                                 std::uint64_t seed, std::string name, const checkpoint::budget& b);
    void check_shapes() const;

    monte_carlo_options options_;
    corrupt_fn corrupt_;
    std::uint64_t n_ = 0, batches_ = 0;
    std::vector<matrix_t> bs_, g_;  // per replicate group: Σ x'_s xᵀ, Σ x'_s x'_sᵀ (upper)
};

}  // namespace recalign
