#include "recalign/align/tracker.hpp"

#include "../core/payload.hpp"

namespace recalign {

template <class Archive>
void alignment_tracker::save_payload(Archive& ar) const {
    ar(static_cast<std::uint64_t>(options_.dim), static_cast<std::uint64_t>(options_.classes),
       static_cast<std::uint64_t>(options_.shape.height), static_cast<std::uint64_t>(options_.shape.width),
       static_cast<std::uint64_t>(options_.shape.channels), static_cast<std::uint8_t>(options_.shape.layout),
       static_cast<std::uint8_t>(options_.measure), // centered inputs with raw targets: 3
       static_cast<std::uint8_t>(options_.raw_targets ? 3 : static_cast<int>(options_.center)),
       static_cast<std::uint64_t>(options_.replicates), options_.rel_tol,
       static_cast<std::uint64_t>(options_.noises.size()));
    for (const noise_spec& s : options_.noises) ar(to_string(s));
    moments_.save_payload(ar);
    for (const auto& mc : mc_)
        if (mc) mc->save_payload(ar);
    ar(reports_, static_cast<std::uint8_t>(has_previous_));
    checkpoint::save_tensor(ar, previous_clean_);
    for (const vector_t& v : previous_noise_) checkpoint::save_tensor(ar, v);
}

template <class Archive>
alignment_tracker alignment_tracker::load_payload(Archive& ar, checkpoint::budget& b) {
    std::uint64_t dim = 0, classes = 0, h = 0, w = 0, c = 0, reps = 0, count = 0;
    std::uint8_t layout = 0, measure = 0, center = 0, has_prev = 0;
    tracker_options o;
    checkpoint::load_scalar(ar, dim, b);
    checkpoint::load_scalar(ar, classes, b);
    checkpoint::load_scalar(ar, h, b);
    checkpoint::load_scalar(ar, w, b);
    checkpoint::load_scalar(ar, c, b);
    checkpoint::load_scalar(ar, layout, b);
    checkpoint::load_scalar(ar, measure, b);
    checkpoint::load_scalar(ar, center, b);
    checkpoint::load_scalar(ar, reps, b);
    checkpoint::load_scalar(ar, o.rel_tol, b);
    checkpoint::load_scalar(ar, count, b);
    if (dim == 0 || dim > checkpoint::max_dim || classes == 0 || classes > checkpoint::max_dim ||
        h > checkpoint::max_dim || w > checkpoint::max_dim || c > checkpoint::max_dim || layout < 1 || layout > 2 ||
        measure < 1 || measure > 4 || center < 1 || center > 3 || reps > (1u << 20) || count > b.left / 8)
        throw std::length_error("tracker configuration out of range");
    o.dim = static_cast<std::size_t>(dim);
    o.classes = static_cast<std::size_t>(classes);
    o.shape = {static_cast<std::size_t>(h), static_cast<std::size_t>(w), static_cast<std::size_t>(c),
               static_cast<image_layout>(layout)};
    o.measure = static_cast<alignment_measure>(measure);
    o.raw_targets = center == 3;
    o.center = center == 3 ? centering::centered : static_cast<centering>(center);
    o.replicates = static_cast<std::size_t>(reps);
    for (std::uint64_t i = 0; i < count; ++i) {
        std::uint64_t len = 0;
        checkpoint::load_scalar(ar, len, b);
        b.take(len, "noise spec");
        std::string text(static_cast<std::size_t>(len), '\0');
        ar(cereal::binary_data(&text[0], text.size()));
        o.noises.push_back(parse_noise_spec(text));
    }
    {
        // The constructor below allocates the clean moment state ((D+C)^2 + D+C doubles) and
        // 2 x replicates D x D matrices per Monte-Carlo noise, all of which the payload must
        // still hold: refuse before allocating (fuzzing found a payload asking for 8 TB;
        // tests/fuzz/corpus/checkpoint/regression).
        const std::uint64_t words = b.left / 8;
        const std::uint64_t p = checked_add(dim, classes, "tracker checkpoint: D + C");
        std::uint64_t need = checked_add(checked_mul(p, p, "tracker checkpoint: (D + C)^2"), p,
                                         "tracker checkpoint: moment state");
        if (need > words) throw std::length_error("tracker state cannot fit in the payload");
        for (const noise_spec& s : o.noises) {
            if (s.draws == 0) continue;
            need = checked_add(need, checked_product({2, reps, dim, dim}, "tracker checkpoint: Monte-Carlo sums"),
                               "tracker checkpoint: state size");
            if (need > words) throw std::length_error("tracker Monte-Carlo state cannot fit in the payload");
        }
    }
    alignment_tracker t(o);
    t.moments_ = moment_accumulator::load_payload(ar, b);
    for (auto& mc : t.mc_)
        if (mc) {
            monte_carlo_noise loaded = monte_carlo_noise::load_payload(ar, b);
            if (loaded.config_hash() != mc->config_hash())
                throw std::length_error("a Monte-Carlo noise state disagrees with its spec");
            loaded.set_corrupter(t.corrupters_[&mc - &t.mc_[0]]);
            *mc = std::move(loaded);
        }
    checkpoint::load_scalar(ar, t.reports_, b);
    checkpoint::load_scalar(ar, has_prev, b);
    t.has_previous_ = has_prev != 0;
    checkpoint::load_tensor(ar, t.previous_clean_, b);
    for (vector_t& v : t.previous_noise_) checkpoint::load_tensor(ar, v, b);
    t.check_loaded();
    return t;
}

// The archives the framing uses (recalign/core/serial.hpp), and no other.
template void alignment_tracker::save_payload(checkpoint::output_archive&) const;
template alignment_tracker alignment_tracker::load_payload(checkpoint::input_archive&, checkpoint::budget&);

}  // namespace recalign
