// The checkpoint payload of patch_blocks, out of the public header (cereal stays here).
#include "recalign/align/patch_blocks.hpp"

#include "../core/payload.hpp"
#include "recalign/core/checked.hpp"

namespace recalign {

namespace {
// Σ_b |I_b|(|I_b| + 1)/2 (the packed upper triangles) without building the blocks: patch rows
// of heights h_r and columns of widths w_c hold h_r·w_c·C values, so Σ_b |I_b|² = C² (Σ h_r²)
// (Σ w_c²) and Σ_b |I_b| = D. Checked, so that a crafted geometry is refused against the
// payload's budget before the constructor allocates it.
std::uint64_t block_values(std::uint64_t h, std::uint64_t w, std::uint64_t c, std::uint64_t ph, std::uint64_t pw) {
    auto squares = [](std::uint64_t extent, std::uint64_t step) {
        const std::uint64_t full = extent / step, rest = extent % step;
        return checked_add(checked_mul(full, checked_mul(step, step, "patch size^2"), "patch rows"), rest * rest,
                           "patch extents");
    };
    const std::uint64_t sq = checked_product({c, c, squares(h, ph), squares(w, pw)}, "patch blocks: sum of |I_b|^2");
    return checked_add(sq, checked_product({h, w, c}, "patch blocks: H x W x C"), "patch blocks: sum of |I_b|") / 2;
}
}  // namespace

template <class Archive>
void patch_blocks::save_payload(Archive& ar) const {
    const image_shape& s = options_.shape;
    ar(static_cast<std::uint64_t>(s.height), static_cast<std::uint64_t>(s.width), static_cast<std::uint64_t>(s.channels),
       static_cast<std::uint8_t>(s.layout), static_cast<std::uint64_t>(options_.patch_h),
       static_cast<std::uint64_t>(options_.patch_w), n_);
    checkpoint::save_tensor(ar, mean_);
    ar(cereal::binary_data(scatter_.data(), scatter_.size() * sizeof(double)));
}

template <class Archive>
patch_blocks patch_blocks::load_payload(Archive& ar, checkpoint::budget& b) {
    std::uint64_t h = 0, w = 0, c = 0, ph = 0, pw = 0, n = 0;
    std::uint8_t layout = 0;
    checkpoint::load_scalar(ar, h, b);
    checkpoint::load_scalar(ar, w, b);
    checkpoint::load_scalar(ar, c, b);
    checkpoint::load_scalar(ar, layout, b);
    checkpoint::load_scalar(ar, ph, b);
    checkpoint::load_scalar(ar, pw, b);
    checkpoint::load_scalar(ar, n, b);
    if (h == 0 || w == 0 || c == 0 || ph == 0 || pw == 0 || ph > h || pw > w || layout < 1 || layout > 2 ||
        h > checkpoint::max_dim || w > checkpoint::max_dim || c > checkpoint::max_dim)
        throw std::length_error("patch blocks: geometry out of range");
    const std::uint64_t d = checked_product({h, w, c}, "patch blocks: H x W x C");
    if (d > checkpoint::max_dim || d > b.left / 8) throw std::length_error("patch blocks: dimension out of range");
    // mean (D doubles + its shape) and the blocks must both still fit in the payload.
    const std::uint64_t values = block_values(h, w, c, ph, pw);
    if (values > b.left / 8) throw std::length_error("patch blocks cannot fit in the payload");
    patch_blocks_options o;
    o.shape = {static_cast<std::size_t>(h), static_cast<std::size_t>(w), static_cast<std::size_t>(c),
               static_cast<image_layout>(layout)};
    o.patch_h = static_cast<std::size_t>(ph);
    o.patch_w = static_cast<std::size_t>(pw);
    patch_blocks p(o);
    p.n_ = n;
    checkpoint::load_tensor(ar, p.mean_, b);
    b.take(p.scatter_.size() * sizeof(double), "patch blocks");
    ar(cereal::binary_data(p.scatter_.data(), p.scatter_.size() * sizeof(double)));
    p.check_loaded();
    return p;
}

// The archives the framing uses (recalign/core/serial.hpp), and no other.
template void patch_blocks::save_payload(checkpoint::output_archive&) const;
template patch_blocks patch_blocks::load_payload(checkpoint::input_archive&, checkpoint::budget&);

}  // namespace recalign
