#include "recalign/sketch/frequent_directions.hpp"

#include <algorithm>
#include <string>

#include "../core/payload.hpp"

namespace recalign {

namespace {
// Flag in the centering byte (1 or 2): the state ends with diag_rows_, the number of leading
// rows the last shrink kept (orthogonal: the next shrink takes their Gram block as diagonal).
// Written only when that number is not 0, so states without it keep the older layout, and
// older builds refuse a state with it as an unknown centering instead of misreading it.
constexpr std::uint8_t kept_rows_flag = 0x10;
}  // namespace

template <class Archive>
void frequent_directions::save_payload(Archive& ar) const {
    const std::size_t kept = std::min(diag_rows_, rows_);
    const auto center = static_cast<std::uint8_t>(static_cast<std::uint8_t>(options_.center) | (kept > 0 ? kept_rows_flag : 0));
    ar(static_cast<std::uint64_t>(options_.dim), static_cast<std::uint64_t>(options_.ell), center, n_, shrinks_, trace_,
       delta_);
    checkpoint::save_tensor(ar, mean_);
    ar(static_cast<std::uint64_t>(rows_));
    ar(cereal::binary_data(buffer_.data(), rows_ * options_.dim * sizeof(double)));
    if (kept > 0) ar(static_cast<std::uint64_t>(kept));
}

template <class Archive>
frequent_directions frequent_directions::load_payload(Archive& ar, checkpoint::budget& b) {
    std::uint64_t dim = 0, ell = 0, n = 0, shrinks = 0, rows = 0;
    std::uint8_t center = 0;
    double trace = 0.0, delta = 0.0;
    checkpoint::load_scalar(ar, dim, b);
    checkpoint::load_scalar(ar, ell, b);
    checkpoint::load_scalar(ar, center, b);
    checkpoint::load_scalar(ar, n, b);
    checkpoint::load_scalar(ar, shrinks, b);
    checkpoint::load_scalar(ar, trace, b);
    checkpoint::load_scalar(ar, delta, b);
    const bool has_kept = (center & kept_rows_flag) != 0;
    frequent_directions fd(validated_options(dim, ell, static_cast<std::uint8_t>(center & ~kept_rows_flag), b));
    fd.n_ = n;
    fd.shrinks_ = shrinks;
    fd.trace_ = trace;
    fd.delta_ = delta;
    checkpoint::load_tensor(ar, fd.mean_, b);
    checkpoint::load_scalar(ar, rows, b);
    // Only the rows in use are stored; the 2ℓ-row buffer is re-grown by the next update.
    if (rows >= 2 * ell) throw std::length_error("sketch holds " + std::to_string(rows) + " rows, more than 2ℓ - 1");
    if (rows != 0 && dim > (b.left / 8) / rows) throw std::length_error("sketch rows exceed the payload");
    b.take(rows * dim * 8, "sketch rows");
    fd.buffer_.resize(static_cast<std::size_t>(rows * dim));
    ar(cereal::binary_data(fd.buffer_.data(), fd.buffer_.size() * sizeof(double)));
    fd.rows_ = static_cast<std::size_t>(rows);
    if (has_kept) {
        std::uint64_t kept = 0;
        checkpoint::load_scalar(ar, kept, b);
        if (kept == 0 || kept > rows || kept > ell)
            throw std::length_error("sketch claims " + std::to_string(kept) + " kept rows of " + std::to_string(rows) +
                                    " held (ℓ = " + std::to_string(ell) + ")");
        fd.diag_rows_ = static_cast<std::size_t>(kept);
    }
    fd.check_loaded();
    return fd;
}

// The archives the framing uses (recalign/core/serial.hpp), and no other.
template void frequent_directions::save_payload(checkpoint::output_archive&) const;
template frequent_directions frequent_directions::load_payload(checkpoint::input_archive&, checkpoint::budget&);

}  // namespace recalign
