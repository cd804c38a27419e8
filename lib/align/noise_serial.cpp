#include "recalign/align/noise.hpp"

#include "../core/payload.hpp"

namespace recalign {

template <class Archive>
void monte_carlo_noise::save_payload(Archive& ar) const {
    ar(static_cast<std::uint64_t>(options_.dim), static_cast<std::uint64_t>(options_.draws),
       static_cast<std::uint64_t>(options_.replicates), options_.seed, options_.name, n_, batches_);
    for (const matrix_t& m : bs_) checkpoint::save_tensor(ar, m);
    for (const matrix_t& m : g_) checkpoint::save_tensor(ar, m);
}

template <class Archive>
monte_carlo_noise monte_carlo_noise::load_payload(Archive& ar, checkpoint::budget& b) {
    std::uint64_t dim = 0, draws = 0, reps = 0, seed = 0, n = 0, batches = 0, name_len = 0;
    checkpoint::load_scalar(ar, dim, b);
    checkpoint::load_scalar(ar, draws, b);
    checkpoint::load_scalar(ar, reps, b);
    checkpoint::load_scalar(ar, seed, b);
    // cereal writes a string as its 64-bit length then the bytes: check before reading.
    checkpoint::load_scalar(ar, name_len, b);
    b.take(name_len, "noise name");
    std::string name(static_cast<std::size_t>(name_len), '\0');
    ar(cereal::binary_data(&name[0], name.size()));
    checkpoint::load_scalar(ar, n, b);
    checkpoint::load_scalar(ar, batches, b);
    monte_carlo_noise m(validated_options(dim, draws, reps, seed, std::move(name), b), {});
    m.n_ = n;
    m.batches_ = batches;
    for (matrix_t& t : m.bs_) checkpoint::load_tensor(ar, t, b);
    for (matrix_t& t : m.g_) checkpoint::load_tensor(ar, t, b);
    m.check_shapes();
    return m;
}

// The archives the framing uses (recalign/core/serial.hpp), and no other.
template void monte_carlo_noise::save_payload(checkpoint::output_archive&) const;
template monte_carlo_noise monte_carlo_noise::load_payload(checkpoint::input_archive&, checkpoint::budget&);

}  // namespace recalign
