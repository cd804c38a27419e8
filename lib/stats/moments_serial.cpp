#include "recalign/stats/moments.hpp"

#include "../core/payload.hpp"

namespace recalign {

template <class Archive>
void moment_accumulator::save_payload(Archive& ar) const {
    ar(static_cast<std::uint64_t>(options_.dim), static_cast<std::uint8_t>(options_.targets),
       static_cast<std::uint64_t>(options_.classes), static_cast<std::uint8_t>(options_.float32_kernels), n_);
    checkpoint::save_tensor(ar, mean_z_);
    checkpoint::save_tensor(ar, mzz_);
}

template <class Archive>
moment_accumulator moment_accumulator::load_payload(Archive& ar, checkpoint::budget& b) {
    std::uint64_t dim = 0, classes = 0, n = 0;
    std::uint8_t mode = 0, f32 = 0;
    checkpoint::load_scalar(ar, dim, b);
    checkpoint::load_scalar(ar, mode, b);
    checkpoint::load_scalar(ar, classes, b);
    checkpoint::load_scalar(ar, f32, b);
    checkpoint::load_scalar(ar, n, b);
    moment_accumulator m(validated_options(dim, mode, classes, f32, b));
    m.n_ = n;
    checkpoint::load_tensor(ar, m.mean_z_, b);
    checkpoint::load_tensor(ar, m.mzz_, b);
    m.check_shapes();
    return m;
}

// The archives the framing uses (recalign/core/serial.hpp), and no other.
template void moment_accumulator::save_payload(checkpoint::output_archive&) const;
template moment_accumulator moment_accumulator::load_payload(checkpoint::input_archive&, checkpoint::budget&);

}  // namespace recalign
