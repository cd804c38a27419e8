#include "recalign/sketch/nystrom_sketch.hpp"

#include "../core/payload.hpp"

namespace recalign {

template <class Archive>
void nystrom_sketch::save_payload(Archive& ar) const {
    ar(static_cast<std::uint64_t>(options_.dim), static_cast<std::uint64_t>(options_.rank),
       static_cast<std::uint64_t>(options_.oversampling), static_cast<std::uint64_t>(options_.probes),
       options_.seed, static_cast<std::uint8_t>(options_.center),
       static_cast<std::uint8_t>((options_.float32_kernels ? 1 : 0) | (options_.test == nystrom_test::signs ? 2 : 0) |
                                 (options_.blocks > 1 ? 4 : 0) | (options_.test == nystrom_test::sparse_signs ? 8 : 0)),
       pass_, n_, trace_);
    // Block Krylov (flag bit 2) after the fields every version has; subspace-iteration states
    // keep the earlier layout byte for byte.
    if (options_.blocks > 1) ar(static_cast<std::uint64_t>(options_.blocks));
    checkpoint::save_tensor(ar, mean_);
    checkpoint::save_tensor(ar, y_);
    if (pass_ > 0) checkpoint::save_tensor(ar, q_);
    if (options_.blocks > 1 && pass_ > 0) {
        checkpoint::save_tensor(ar, kq_);
        checkpoint::save_tensor(ar, ky_);
    }
}

template <class Archive>
nystrom_sketch nystrom_sketch::load_payload(Archive& ar, checkpoint::budget& b) {
    std::uint64_t dim = 0, rank = 0, over = 0, probes = 0, seed = 0, n = 0, blocks = 1;
    std::uint8_t center = 0, f32 = 0;
    std::uint32_t pass = 0;
    double trace = 0.0;
    checkpoint::load_scalar(ar, dim, b);
    checkpoint::load_scalar(ar, rank, b);
    checkpoint::load_scalar(ar, over, b);
    checkpoint::load_scalar(ar, probes, b);
    checkpoint::load_scalar(ar, seed, b);
    checkpoint::load_scalar(ar, center, b);
    checkpoint::load_scalar(ar, f32, b);
    checkpoint::load_scalar(ar, pass, b);
    checkpoint::load_scalar(ar, n, b);
    checkpoint::load_scalar(ar, trace, b);
    if (f32 & 4) checkpoint::load_scalar(ar, blocks, b);
    nystrom_sketch s(validated_options(dim, rank, over, probes, seed, center, f32, pass, blocks, b));
    s.pass_ = pass;
    s.n_ = n;
    s.trace_ = trace;
    checkpoint::load_tensor(ar, s.mean_, b);
    checkpoint::load_tensor(ar, s.y_, b);
    if (pass > 0) checkpoint::load_tensor(ar, s.q_, b);
    if ((f32 & 4) && pass > 0) {
        checkpoint::load_tensor(ar, s.kq_, b);
        checkpoint::load_tensor(ar, s.ky_, b);
    }
    s.check_loaded();
    return s;
}

// The archives the framing uses (recalign/core/serial.hpp), and no other.
template void nystrom_sketch::save_payload(checkpoint::output_archive&) const;
template nystrom_sketch nystrom_sketch::load_payload(checkpoint::input_archive&, checkpoint::budget&);

}  // namespace recalign
