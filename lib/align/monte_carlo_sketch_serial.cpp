// The checkpoint payload of monte_carlo_sketch, out of the public header (cereal stays here).
#include "recalign/align/monte_carlo_sketch.hpp"

#include <cmath>

#include "../core/payload.hpp"
#include "recalign/core/checked.hpp"

namespace recalign {

template <class Archive>
void monte_carlo_sketch::save_payload(Archive& ar) const {
    ar(static_cast<std::uint64_t>(options_.draws), options_.seed, options_.name, n_, batches_,
       static_cast<std::uint8_t>(options_.ranges));
    checkpoint::save_tensor(ar, options_.test);
    checkpoint::save_tensor(ar, g_);
    checkpoint::save_tensor(ar, bs_);
    checkpoint::save_tensor(ar, bs_t_);
}

template <class Archive>
monte_carlo_sketch monte_carlo_sketch::load_payload(Archive& ar, checkpoint::budget& b) {
    std::uint64_t draws = 0, seed = 0, name_len = 0, n = 0, batches = 0;
    checkpoint::load_scalar(ar, draws, b);
    checkpoint::load_scalar(ar, seed, b);
    // cereal writes a string as its 64-bit length then the bytes: check before reading.
    checkpoint::load_scalar(ar, name_len, b);
    b.take(name_len, "noise name");
    std::string name(static_cast<std::size_t>(name_len), '\0');
    if (name_len) ar(cereal::binary_data(&name[0], name.size()));
    checkpoint::load_scalar(ar, n, b);
    checkpoint::load_scalar(ar, batches, b);
    std::uint8_t ranges = 0;
    checkpoint::load_scalar(ar, ranges, b);
    if (ranges > 1) throw std::length_error("Monte-Carlo sketch: bad ranges flag");
    if (draws == 0 || draws > (1ULL << 32)) throw std::length_error("Monte-Carlo sketch: draws out of range");
    monte_carlo_sketch_options o;
    o.draws = static_cast<std::size_t>(draws);
    o.seed = seed;
    o.name = std::move(name);
    o.ranges = ranges == 1;
    checkpoint::load_tensor(ar, o.test, b);  // within the budget: the payload holds it
    const std::uint64_t d = o.test.shape(0), l = o.test.shape(1);
    if (d == 0 || l == 0 || d > checkpoint::max_dim || l > checkpoint::max_dim)
        throw std::length_error("Monte-Carlo sketch: test matrix shape out of range");
    // The constructor allocates 3 D x l doubles (without ranges D x l + l x l), which the rest of
    // the payload must still hold.
    const std::uint64_t words = o.ranges ? checked_product({3, d, l}, "Monte-Carlo sketch: 3 x D x l")
                                         : checked_add(checked_mul(d, l, "D x l"), checked_mul(l, l, "l x l"), "D l + l^2");
    if (words > b.left / 8)
        throw std::length_error("the payload is too small for the state its configuration announces");
    for (double v : o.test)
        if (!std::isfinite(v)) throw std::length_error("Monte-Carlo sketch: non-finite test matrix");
    monte_carlo_sketch m(std::move(o), {});
    m.n_ = n;
    m.batches_ = batches;
    checkpoint::load_tensor(ar, m.g_, b);
    checkpoint::load_tensor(ar, m.bs_, b);
    checkpoint::load_tensor(ar, m.bs_t_, b);
    m.check_loaded();
    return m;
}

// The archives the framing uses (recalign/core/serial.hpp), and no other.
template void monte_carlo_sketch::save_payload(checkpoint::output_archive&) const;
template monte_carlo_sketch monte_carlo_sketch::load_payload(checkpoint::input_archive&, checkpoint::budget&);

}  // namespace recalign
