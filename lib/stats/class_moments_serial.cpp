// class_moments checkpoint payload (the framing is recalign/core/serial.hpp's), kept out of
// the public header and instantiated for the archives the framing uses.
#include "recalign/stats/class_moments.hpp"

#include "../core/payload.hpp"

namespace recalign {

// Layout: D, C (u64), the C counts n_c (u64), the C x D means (checkpoint tensor).
template <class Archive>
void class_moments::save_payload(Archive& ar) const {
    ar(static_cast<std::uint64_t>(options_.dim), static_cast<std::uint64_t>(options_.classes));
    ar(cereal::binary_data(counts_.data(), counts_.size() * sizeof(std::uint64_t)));
    checkpoint::save_tensor(ar, means_);
}

template <class Archive>
class_moments class_moments::load_payload(Archive& ar, checkpoint::budget& b) {
    std::uint64_t dim = 0, classes = 0;
    checkpoint::load_scalar(ar, dim, b);
    checkpoint::load_scalar(ar, classes, b);
    class_moments m(validated_options(dim, classes, b));
    b.take(classes * sizeof(std::uint64_t), "class counts");  // classes <= max_dim: no overflow
    ar(cereal::binary_data(m.counts_.data(), m.counts_.size() * sizeof(std::uint64_t)));
    checkpoint::load_tensor(ar, m.means_, b);
    m.check_loaded();
    return m;
}

template void class_moments::save_payload(checkpoint::output_archive&) const;
template class_moments class_moments::load_payload(checkpoint::input_archive&, checkpoint::budget&);

}  // namespace recalign
