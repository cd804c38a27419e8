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

std::string jitter_state::save() const {
    if (sigma_ == 0.0) return inner_.save();  // no jitter: the checkpoint bytes of every other run
    std::string out(header_bytes, '\0');
    std::memcpy(&out[0], magic, 8);
    std::memcpy(&out[8], &sigma_, 8);
    std::memcpy(&out[16], &seed_, 8);
    return out + inner_.save();
}

void jitter_state::load(const std::string& bytes, const std::string& source) {
    double sigma = 0;
    std::uint64_t seed = 0;
    if (has_header(bytes)) {
        std::memcpy(&sigma, bytes.data() + 8, 8);
        std::memcpy(&seed, bytes.data() + 16, 8);
    }
    if (!(sigma == sigma_) || (sigma_ != 0.0 && seed != seed_))
        throw std::invalid_argument("checkpoint " + source + " belongs to a different run: --jitter/--seed were " +
                                    std::to_string(sigma) + "/" + std::to_string(seed) + ", now " +
                                    std::to_string(sigma_) + "/" + std::to_string(seed_));
    inner_.loaded_at = loaded_at + (has_header(bytes) ? header_bytes : 0);
    inner_.load(without_jitter_header(bytes), source);
}

void jitter_state::merge(const stream_state& o) {
    const auto* other = dynamic_cast<const jitter_state*>(&o);
    if (!other) throw std::invalid_argument("cannot merge: one state is jittered and the other not");
    if (!(other->sigma_ == sigma_) || other->seed_ != seed_)
        throw std::invalid_argument("cannot merge: the states were jittered with different --jitter/--seed");
    inner_.merge(other->inner_);
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
