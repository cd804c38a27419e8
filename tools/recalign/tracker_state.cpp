#include "tracker_state.hpp"

#include "jitter_state.hpp"
#include "mpi_context.hpp"
#include "recalign/core/errors.hpp"
#include "recalign/core/serial.hpp"

namespace recalign::cli {

namespace {
std::string noise_list(const tracker_options& o) {
    std::string s;
    for (const noise_spec& n : o.noises) s += (s.empty() ? "" : " ") + to_string(n);
    return s + " (image " + std::to_string(o.shape.height) + "x" + std::to_string(o.shape.width) + "x" +
           std::to_string(o.shape.channels) + ", " + image_layout_name(o.shape.layout) + ", measure " +
           measure_name(o.measure) + ", " + centering_name(o.center) + ")";
}
}  // namespace

void tracker_state::update(const io::source_batch& b, std::uint64_t) {
    tracker_.update(b.view(), b.targets(), b.first_row);
}

std::string tracker_state::save() const { return checkpoint::to_bytes(tracker_); }

void tracker_state::load(const std::string& bytes, const std::string& source) {
    alignment_tracker t =
        checkpoint::from_bytes<alignment_tracker>(without_jitter_header(bytes), source + " (nested accumulator)");
    if (t.config_hash() != tracker_.config_hash())
        throw std::invalid_argument("checkpoint " + source + " belongs to a different run: its noise models are " +
                                    noise_list(t.options()) + ", this run's " + noise_list(tracker_.options()));
    tracker_ = std::move(t);
}

void tracker_state::reduce(const mpi_context& mpi) {
    if (!mpi.active()) return;
    if (std::optional<alignment_tracker> t = mpi.reduce(tracker_)) tracker_ = std::move(*t);
}

void tracker_state::merge(const stream_state& o) {
    const auto* other = dynamic_cast<const tracker_state*>(&o);
    if (!other) throw std::invalid_argument("cannot merge: the states are of different commands");
    tracker_.merge(other->tracker_);
}

}  // namespace recalign::cli
