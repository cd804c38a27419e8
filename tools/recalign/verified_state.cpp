#include "verified_state.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "mpi_context.hpp"
#include "recalign/core/checked.hpp"
#include "recalign/core/errors.hpp"
#include "recalign/core/serial.hpp"
#include "state_bytes.hpp"

namespace recalign::cli {

namespace {
// Distinguishes a verified state from a route state (which starts with a u64 length) in
// checkpoints: `merge` and --from name it instead of misreading it.
const char* const magic = verified_magic;
}  // namespace

verified_state::verified_state(const run_config& config, verify_plan plan)
    : route_(config), plan_(std::move(plan)), classes_(static_cast<std::size_t>(config.classes)) {
    for (const patch_blocks_options& o : plan_.blocks) blocks_.emplace_back(o);
}

namespace {
// A basis as bytes: [u64 rows][u64 cols][row-major doubles] (rank 0 -> every rank).
std::string matrix_bytes(const matrix_t& m) {
    std::string s;
    put_u64(s, m.shape(0));
    put_u64(s, m.shape(1));
    s.append(reinterpret_cast<const char*>(m.data()), m.size() * sizeof(double));
    return s;
}

matrix_t bytes_matrix(const std::string& s) {
    std::uint64_t rows = 0, cols = 0;
    if (s.size() < 16) throw std::logic_error("verified_state: rank 0's basis is truncated");
    std::memcpy(&rows, s.data(), 8);
    std::memcpy(&cols, s.data() + 8, 8);
    if (s.size() - 16 != checked_mul(checked_mul(rows, cols, "basis"), 8, "basis"))
        throw std::logic_error("verified_state: rank 0's basis has the wrong size");
    matrix_t m = xt::empty<double>({static_cast<std::size_t>(rows), static_cast<std::size_t>(cols)});
    std::memcpy(m.data(), s.data() + 16, s.size() - 16);
    return m;
}

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

bool verified_state::hold_whole() {
    whole_ = true;
    return route_.hold_whole();
}

void verified_state::next_pass(const mpi_context& mpi) {
    ++pass_;
    const bool whole = std::exchange(whole_, false);
    if (whole && mpi.rank() != 0)  // rank 0's blocks (pass 0) are the whole range's
        for (patch_blocks& p : blocks_) p = patch_blocks(p.options());
    if (pass_ < route_.passes()) {
        route_.next_pass(mpi);
        return;
    }
    // The sketch (or the previous verification pass) is complete: the next basis. Under
    // mpirun, rank 0 merges the ranks' sketch and blocks (once, after the sketch passes; they
    // stay merged there for the analyses) or their previous verification pass, computes the
    // basis alone and hands it to every rank: each rank then verifies its own shard on the
    // same bits, and the final reduce merges only the restricted moments.
    if (mpi.active()) {
        if (pass_ == route_.passes()) {
            if (!whole) {  // a merge every rank loaded (hold_whole) is whole on rank 0 already
                route_.reduce(mpi);
                reduce_blocks(mpi);
            }
        } else {
            reduce_pass(mpi);
        }
    }
    matrix_t basis;
    if (mpi.rank() == 0) {
        const statistics s = sketch();
        std::optional<restricted_statistics> previous;
        if (pass_state_) {
            previous = std::move(*pass_state_).finish(plan_.center);
            pass_state_.reset();
        }
        basis = plan_.basis(s, blocks_, previous ? &*previous : nullptr);
    }
    if (mpi.active()) {
        std::string bytes = mpi.rank() == 0 ? matrix_bytes(basis) : std::string();
        basis = bytes_matrix(mpi.broadcast_bytes(std::move(bytes)));
    }
    restricted_moments_options o;
    o.basis = std::move(basis);
    o.classes = classes_;
    pass_state_.emplace(std::move(o));
}

void verified_state::reduce_blocks(const mpi_context& mpi) {
    for (patch_blocks& p : blocks_) {
        std::optional<std::string> bytes =
            mpi.reduce_bytes(checkpoint::to_bytes(p), [](const std::string& lower, const std::string& upper) {
                patch_blocks a = checkpoint::from_bytes<patch_blocks>(lower, "rank state (patch blocks)");
                a.merge(checkpoint::from_bytes<patch_blocks>(upper, "rank state (patch blocks)"));
                return checkpoint::to_bytes(a);
            });
        if (bytes) p = checkpoint::from_bytes<patch_blocks>(*bytes, "the ranks' merged patch blocks");
    }
}

void verified_state::reduce_pass(const mpi_context& mpi) {
    if (!pass_state_) return;
    std::optional<std::string> bytes =
        mpi.reduce_bytes(checkpoint::to_bytes(*pass_state_), [](const std::string& lower, const std::string& upper) {
            restricted_moments a = checkpoint::from_bytes<restricted_moments>(lower, "rank state (verification pass)");
            a.merge(checkpoint::from_bytes<restricted_moments>(upper, "rank state (verification pass)"));
            return checkpoint::to_bytes(a);
        });
    if (bytes) pass_state_.emplace(checkpoint::from_bytes<restricted_moments>(*bytes, "the ranks' merged verification pass"));
}

std::uint64_t verified_state::passes_to_skip(std::uint64_t pass) {
    if (pass >= route_.passes()) {  // a verification pass: the plan's adaptive stop, if any
        if (!plan_.done || !pass_state_ || pass + 1 >= passes()) return 0;
        if (!plan_.done(sketch(), blocks_, pass_state_->finish(plan_.center))) return 0;
        const std::uint64_t skip = passes() - 1 - pass;
        pass_ += skip;
        skipped_ += skip;
        return skip;
    }
    const std::uint64_t skip = route_.passes_to_skip(pass);
    pass_ += skip;  // next_pass() then starts the verification
    return skip;
}

restricted_statistics verified_state::verified() const {
    if (!pass_state_) throw std::logic_error("verified_state: no verification pass was run");
    return pass_state_->finish(plan_.center);
}

restricted_statistics verified_state::take_verified() {
    if (!pass_state_) throw std::logic_error("verified_state: no verification pass was run");
    restricted_statistics s = std::move(*pass_state_).finish(plan_.center);
    pass_state_.reset();
    return s;
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
    state_reader r{std::string_view(bytes).substr(8), source, "verified state"};
    const std::uint64_t pass = r.u64();
    route_state route(route_.config());
    route.load(r.part(), source);
    const std::uint64_t count = r.u64();
    if (!adopt_blocks_ && count != blocks_.size())
        throw file_error(source, checkpoint::header_bytes, "the checkpoint's patch blocks are of other noises");
    if (count > r.bytes.size() / 8) throw file_error(source, checkpoint::header_bytes, "verified state truncated");
    std::vector<patch_blocks> blocks;
    for (std::uint64_t i = 0; i < count; ++i) {
        patch_blocks p = checkpoint::from_bytes<patch_blocks>(r.part(), source + " (patch blocks)");
        if (!adopt_blocks_ && p.config_hash() != blocks_[static_cast<std::size_t>(i)].config_hash())
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
    // The sketch and the blocks were merged into rank 0 before the first verification pass
    // (next_pass): what is left is the last pass's restricted moments.
    if (mpi.active()) reduce_pass(mpi);
}

// Shards (`merge`): their sketch passes add up; each shard's own verification pass (of its
// own sketch's basis) is dropped. The merged state waits at the end of its sketch passes:
// resumed with the whole input (driver.cpp), it verifies the merged sketch's basis.
void verified_state::merge(const stream_state& o) {
    const auto* other = dynamic_cast<const verified_state*>(&o);
    if (!other)
        throw std::invalid_argument("cannot merge a run with a verification pass and one without (--no-verify, or "
                                    "another command)");
    if (other->blocks_.size() != blocks_.size())
        throw std::invalid_argument("cannot merge: the runs accumulated patch blocks of other noises");
    route_state route = route_;
    route.merge(other->route_);
    std::vector<patch_blocks> blocks = blocks_;
    for (std::size_t i = 0; i < blocks.size(); ++i) {
        if (blocks[i].config_hash() != other->blocks_[i].config_hash())
            throw std::invalid_argument("cannot merge: the runs accumulated patch blocks of other noises");
        blocks[i].merge(other->blocks_[i]);
    }
    const std::uint64_t last_sketch = route_.passes() - 1;
    route_ = std::move(route);
    blocks_ = std::move(blocks);
    pass_ = std::min({pass_, other->pass_, last_sketch});
    pass_state_.reset();
}

verified_state verified_state::for_merge(const run_config& config, const std::string& bytes, const std::string& source) {
    verified_state s(config, verify_plan{});
    s.adopt_blocks_ = true;
    s.load(bytes, source);
    s.adopt_blocks_ = false;
    return s;
}

}  // namespace recalign::cli
