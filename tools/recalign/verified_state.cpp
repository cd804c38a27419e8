#include "verified_state.hpp"

#include <chrono>
#include <cstring>
#include <stdexcept>

#include "recalign/core/errors.hpp"
#include "recalign/core/serial.hpp"

namespace recalign::cli {

namespace {
// Distinguishes a verified state from a route state (which starts with a u64 length) in
// checkpoints: `merge` and --from name it instead of misreading it.
constexpr char magic[8] = {'R', 'A', 'V', 'E', 'R', 'I', 'F', 'Y'};

void put_u64(std::string& s, std::uint64_t v) { s.append(reinterpret_cast<const char*>(&v), 8); }
void put_part(std::string& s, const std::string& part) {
    put_u64(s, part.size());
    s += part;
}

struct reader {
    std::string_view bytes;
    const std::string& source;
    std::uint64_t u64() {
        if (bytes.size() < 8) throw file_error(source, checkpoint::header_bytes, "verified state truncated");
        std::uint64_t v = 0;
        std::memcpy(&v, bytes.data(), 8);
        bytes.remove_prefix(8);
        return v;
    }
    std::string part() {
        const std::uint64_t len = u64();
        if (len > bytes.size()) throw file_error(source, checkpoint::header_bytes, "verified state truncated");
        std::string p(bytes.substr(0, static_cast<std::size_t>(len)));
        bytes.remove_prefix(static_cast<std::size_t>(len));
        return p;
    }
};
}  // namespace

verified_state::verified_state(const run_config& config, verify_plan plan)
    : route_(config), plan_(std::move(plan)), classes_(static_cast<std::size_t>(config.classes)) {
    for (const patch_blocks_options& o : plan_.blocks) blocks_.emplace_back(o);
}

namespace {
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
}  // namespace

std::vector<double> verified_state::pass_seconds() const {
    std::vector<double> s(marks_.size(), 0.0);
    // A pass ends where the next pass that ran starts (--tolerance skips passes: no mark).
    for (std::size_t i = 0; i < marks_.size(); ++i) {
        if (marks_[i] <= 0) continue;
        std::size_t j = i + 1;
        while (j < marks_.size() && marks_[j] <= 0) ++j;
        s[i] = (j < marks_.size() ? marks_[j] : now()) - marks_[i];
    }
    return s;
}

void verified_state::update(const io::source_batch& b, std::uint64_t pass) {
    if (marks_.size() <= pass) marks_.resize(static_cast<std::size_t>(pass) + 1, 0.0);
    if (marks_[pass] == 0) marks_[pass] = now();
    if (pass < route_.passes()) {
        // The route validates the rows and labels first (strong guarantee); the blocks then
        // see only rows it accepted.
        route_.update(b, pass);
        if (pass == 0)
            for (patch_blocks& p : blocks_) p.update(b.view(), b.first_row);
        return;
    }
    if (!pass_state_) throw std::logic_error("verified_state: a verification pass without its basis");
    if (classes_) pass_state_->update(b.view(), b.targets(), b.first_row);
    else pass_state_->update(b.view(), b.first_row);
}

void verified_state::next_pass() {
    ++pass_;
    if (pass_ < route_.passes()) {
        route_.next_pass();
        return;
    }
    // The sketch (or the previous verification pass) is complete: the next basis.
    const statistics s = sketch();
    std::optional<restricted_statistics> previous;
    if (pass_state_) previous = pass_state_->finish(plan_.center);
    restricted_moments_options o;
    o.basis = plan_.basis(s, blocks_, previous ? &*previous : nullptr);
    o.classes = classes_;
    pass_state_.emplace(std::move(o));
}

std::uint64_t verified_state::passes_to_skip(std::uint64_t pass) {
    if (pass >= route_.passes()) return 0;  // a verification pass
    const std::uint64_t skip = route_.passes_to_skip(pass);
    pass_ += skip;  // next_pass() then starts the verification
    return skip;
}

restricted_statistics verified_state::verified() const {
    if (!pass_state_) throw std::logic_error("verified_state: no verification pass was run");
    return pass_state_->finish(plan_.center);
}

// [magic][u64 pass][route][u64 blocks][each block state][u64 has pass][pass state]
std::string verified_state::save() const {
    std::string out(magic, 8);
    put_u64(out, pass_);
    put_part(out, route_.save());
    put_u64(out, blocks_.size());
    for (const patch_blocks& p : blocks_) put_part(out, checkpoint::to_bytes(p));
    put_u64(out, pass_state_ ? 1 : 0);
    if (pass_state_) put_part(out, checkpoint::to_bytes(*pass_state_));
    return out;
}

void verified_state::load(const std::string& bytes, const std::string& source) {
    if (bytes.size() < 8 || bytes.compare(0, 8, std::string(magic, 8)) != 0)
        throw file_error(source, checkpoint::header_bytes,
                         "this checkpoint holds no verification pass (written with --no-verify or by another "
                         "command): continue it with --no-verify");
    reader r{std::string_view(bytes).substr(8), source};
    const std::uint64_t pass = r.u64();
    route_state route(route_.config());
    route.load(r.part(), source);
    if (r.u64() != blocks_.size())
        throw file_error(source, checkpoint::header_bytes, "the checkpoint's patch blocks are of other noises");
    std::vector<patch_blocks> blocks;
    for (const patch_blocks& fresh : blocks_) {
        patch_blocks p = checkpoint::from_bytes<patch_blocks>(r.part(), source + " (patch blocks)");
        if (p.config_hash() != fresh.config_hash())
            throw file_error(source, checkpoint::header_bytes, "the checkpoint's patch blocks are of other noises");
        blocks.push_back(std::move(p));
    }
    std::optional<restricted_moments> state;
    if (r.u64()) {
        state.emplace(checkpoint::from_bytes<restricted_moments>(r.part(), source + " (verification pass)"));
        if (state->k() == 0 || state->dim() != route_.config().dim)
            throw file_error(source, checkpoint::header_bytes, "the verification pass is of other data");
    }
    if (!r.bytes.empty()) throw file_error(source, checkpoint::header_bytes, "unexpected bytes after the verified state");
    route_ = std::move(route);
    blocks_ = std::move(blocks);
    pass_state_ = std::move(state);
    pass_ = pass;
}

void verified_state::reduce(const mpi_context& mpi) {
    // The commands refuse --verify under mpirun (the basis needs the merged sketch).
    route_.reduce(mpi);
}

void verified_state::merge(const stream_state&) {
    throw std::invalid_argument("cannot merge runs with a verification pass: each shard verified its own sketch's "
                                "subspaces; merge runs made with --no-verify");
}

}  // namespace recalign::cli
