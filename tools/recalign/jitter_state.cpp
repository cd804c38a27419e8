#include "jitter_state.hpp"

#include <cstring>
#include <stdexcept>

#include "recalign/core/batch.hpp"
#include "recalign/core/checked.hpp"
#include "recalign/core/errors.hpp"
#include "recalign/core/rng.hpp"

namespace recalign::cli {

namespace {
// Stream tag of the jitter (the Monte-Carlo noises use others): keeps its numbers independent.
constexpr std::uint64_t jitter_tag = 0x6a6974746572ULL;  // "jitter"
constexpr char magic[] = "RCJITTER";  // 8 bytes, then sigma and seed
constexpr std::size_t header_bytes = 24;

bool has_header(const std::string& bytes) { return bytes.size() >= header_bytes && bytes.compare(0, 8, magic) == 0; }
}  // namespace

void jitter_state::update(const io::source_batch& b, std::uint64_t pass) {
    if (sigma_ == 0.0) return inner_.update(b, pass);
    io::source_batch j;
    j.rows = b.rows;
    j.cols = b.cols;
    j.first_row = b.first_row;
    j.labels = b.labels;
    j.scale = 1.0;
    j.block.type = dtype::f64;
    j.block.rows = b.rows;
    j.block.cols = b.cols;
    j.block.bytes.resize(checked_elements<double>({b.rows, b.cols}, "jitter: batch rows x D") * sizeof(double));
    auto* x = reinterpret_cast<double*>(j.block.bytes.data());
    to_double_checked(b.view(), b.cols, x, b.first_row);  // NaN/Inf refused before any noise is added
    for (std::size_t r = 0; r < b.rows; ++r) {
        const rng::stream s(seed_, jitter_tag, b.first_row + r);
        for (std::size_t c = 0; c < b.cols; ++c) x[r * b.cols + c] += sigma_ * s.normal(c);
    }
    inner_.update(j, pass);
}

std::string jitter_state::save() const { return bytes_of(*this); }

void jitter_state::save_to(state_sink& sink) const {
    if (sigma_ != 0.0) {  // no jitter: the checkpoint bytes of every other run
        sink.put(magic, 8);
        sink.f64(sigma_);
        sink.u64(seed_);
    }
    inner_.save_to(sink);
}

void jitter_state::load(const std::string& bytes, const std::string& source) {
    load_from(state_source(bytes, loaded_at, source));
}

void jitter_state::load_from(const state_source& src) {
    double sigma = 0;
    std::uint64_t seed = 0;
    const bool tagged = without_jitter_header(src).at() != src.at();
    if (tagged) {
        src.read(8, &sigma, 8);
        src.read(16, &seed, 8);
    }
    if (!(sigma == sigma_) || (sigma_ != 0.0 && seed != seed_))
        throw std::invalid_argument("checkpoint " + src.name() + " belongs to a different run: --jitter/--seed were " +
                                    std::to_string(sigma) + "/" + std::to_string(seed) + ", now " +
                                    std::to_string(sigma_) + "/" + std::to_string(seed_));
    inner_.load_from(without_jitter_header(src));
}

void jitter_state::merge(const stream_state& o) {
    const auto* other = dynamic_cast<const jitter_state*>(&o);
    if (!other) throw std::invalid_argument("cannot merge: one state is jittered and the other not");
    if (!(other->sigma_ == sigma_) || other->seed_ != seed_)
        throw std::invalid_argument("cannot merge: the states were jittered with different --jitter/--seed");
    inner_.merge(other->inner_);
}

state_source without_jitter_header(const state_source& bytes) {
    const bool tagged = bytes.size() >= header_bytes && bytes.starts_with(std::string_view(magic, 8));
    return tagged ? bytes.sub(header_bytes, bytes.size() - header_bytes) : bytes;
}

std::pair<double, std::uint64_t> jitter_of(const std::string& bytes) {
    std::pair<double, std::uint64_t> j{0.0, 0};
    if (!has_header(bytes)) return j;
    std::memcpy(&j.first, bytes.data() + 8, 8);
    std::memcpy(&j.second, bytes.data() + 16, 8);
    return j;
}

std::string without_jitter_header(const std::string& bytes) {
    return has_header(bytes) ? bytes.substr(header_bytes) : bytes;
}

stream_state& with_jitter(stream_state& inner, double sigma, std::uint64_t seed, std::unique_ptr<jitter_state>& holder) {
    holder = std::make_unique<jitter_state>(inner, sigma, seed);
    return *holder;
}

}  // namespace recalign::cli
