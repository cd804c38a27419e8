// The checkpoint payload of restricted_moments, out of the public header (cereal stays here).
#include "recalign/align/restricted_moments.hpp"

#include "../core/payload.hpp"
#include "recalign/core/checked.hpp"

namespace recalign {

template <class Archive>
void restricted_moments::save_payload(Archive& ar) const {
    ar(static_cast<std::uint64_t>(options_.classes), n_);
    checkpoint::save_tensor(ar, options_.basis);
    checkpoint::save_tensor(ar, mean_);
    checkpoint::save_tensor(ar, mzz_);
    checkpoint::save_tensor(ar, mxz_);
    if (labels_) labels_->save_payload(ar);
}

template <class Archive>
restricted_moments restricted_moments::load_payload(Archive& ar, checkpoint::budget& b) {
    std::uint64_t classes = 0, n = 0;
    checkpoint::load_scalar(ar, classes, b);
    checkpoint::load_scalar(ar, n, b);
    if (classes > checkpoint::max_dim) throw std::length_error("restricted moments: class count out of range");
    restricted_moments_options o;
    o.classes = static_cast<std::size_t>(classes);
    checkpoint::load_tensor(ar, o.basis, b);  // within the budget: the payload holds it
    const std::uint64_t d = o.basis.shape(0), k = o.basis.shape(1);
    if (d == 0 || k == 0 || d > checkpoint::max_dim || k > checkpoint::max_dim)
        throw std::length_error("restricted moments: basis shape out of range");
    // The constructor allocates D + K² + D·K doubles (and K·C for the labels), which the rest
    // of the payload must still hold: refuse before allocating.
    const std::uint64_t words = checked_add(checked_add(d, checked_mul(k, k, "K^2"), "D + K^2"),
                                            checked_add(checked_mul(d, k, "D x K"), checked_mul(k, classes, "K x C"),
                                                        "D x K + K x C"),
                                            "restricted moments: state");
    if (words > b.left / 8) throw std::length_error("restricted moments cannot fit in the payload");
    for (double v : o.basis)
        if (!std::isfinite(v)) throw std::length_error("restricted moments: non-finite basis");
    restricted_moments m(std::move(o));
    m.n_ = n;
    checkpoint::load_tensor(ar, m.mean_, b);
    checkpoint::load_tensor(ar, m.mzz_, b);
    checkpoint::load_tensor(ar, m.mxz_, b);
    if (m.labels_) {
        class_moments loaded = class_moments::load_payload(ar, b);
        if (loaded.dim() != k || loaded.classes() != classes)
            throw std::length_error("restricted moments: label statistics disagree with the configuration");
        m.labels_.emplace(std::move(loaded));
    }
    m.check_loaded();
    return m;
}

// The archives the framing uses (recalign/core/serial.hpp), and no other.
template void restricted_moments::save_payload(checkpoint::output_archive&) const;
template restricted_moments restricted_moments::load_payload(checkpoint::input_archive&, checkpoint::budget&);

}  // namespace recalign
