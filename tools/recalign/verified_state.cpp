#include "verified_state.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <utility>

#include "memory_trace.hpp"
#include "mpi_context.hpp"
#include "recalign/core/checked.hpp"
#include "recalign/core/errors.hpp"
#include "recalign/core/serial.hpp"
#include "recalign/io/spill.hpp"
#include "verified_bytes.hpp"

namespace recalign::cli {

namespace {
// Distinguishes a verified state from a route state (which starts with a u64 length) in
// checkpoints: `merge` and --from name it instead of misreading it.
const char* const magic = verified_magic;
// Runs `park`, a move to disk of verify_plan::park. A $TMPDIR that can no longer take it (the
// commands checked for room before reading) leaves `what` in memory, said on stderr: the run
// goes on.
template <class F>
void park_or_keep(const char* what, F&& park) {
    try {
        park();
    } catch (const file_error& e) {
        std::fprintf(stderr, "recalign: note: %s stays in memory: %s\n", what, e.what());
    }
}
void park_or_keep(route_state& route) {
    park_or_keep("the finished sketch's state", [&route] { route.park(io::spill_directory()); });
}
// The sketch's basis U in an unlinked file in io::spill_directory(); null (said on stderr) where
// it cannot be written: U then stays in memory.
std::shared_ptr<io::row_spill> parked_basis(const matrix_t& u) {
    std::shared_ptr<io::row_spill> out;
    park_or_keep("the sketch's basis", [&] {
        auto file = std::make_shared<io::row_spill>(io::spill_directory(), u.shape(0), u.shape(1));
        if (u.size()) file->write_rows(0, u.shape(0), u.data());
        out = std::move(file);
    });
    return out;
}
// v with x after its last element.
vector_t appended(const vector_t& v, double x) {
    vector_t out = xt::zeros<double>({v.size() + 1});
    std::copy(v.begin(), v.end(), out.begin());
    out(v.size()) = x;
    return out;
}
}  // namespace

verified_state::verified_state(const run_config& config, verify_plan plan)
    : route_(config), plan_(std::move(plan)), classes_(static_cast<std::size_t>(config.classes)) {
    planned_ = plan_.passes;
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
    if (stopped_) return;  // the refinement stopped: nothing is read (reads() is false)
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
    memory_mark(pass_ == route_.passes() ? "sketch passes" : "verification pass");
    matrix_t basis;
    if (mpi.rank() == 0) {
        if (pass_ == route_.passes()) forget_sketch();  // the sketch as merged, finished once
        // Its basis, when parked, is read back below once the pass's Sxx V is on disk (sketch()).
        const statistics& s = finished();
        memory_mark("sketch finished");
        if (plan_.park) park_or_keep(route_);  // only a checkpoint reads it from now on
        std::optional<restricted_statistics> previous;
        if (pass_state_) {
            previous = std::move(*pass_state_).finish(plan_.center);
            pass_state_.reset();
            if (next_) {  // an incremental pass read only T: joined to what was known of R
                previous = complete_pass(std::move(*next_), std::move(*previous));
                next_.reset();
                memory_mark("pass completed");
            }
        }
        if (previous && plan_.restart) {
            // Sxx Q on disk through the restart (the first pass's too): it reads it a block of rows
            // at a time (io/spill.hpp).
            previous->products();
            previous->spill_sv(io::spill_directory());
            sketch();  // U back in memory for the restart
            refinement_step step = plan_.restart(s, blocks_, *previous, curves_.size() ? &curves_ : nullptr, change_);
            change_ = step.change;
            estimate_ = step.estimate;
            changes_ = appended(changes_, step.change);
            estimates_ = appended(estimates_, step.estimate);
            curves_ = std::move(step.curves);
            if (step.stopped) {
                final_ = std::move(*previous);
            } else if (step.next.k() == step.next.carried) {  // nothing new to read: R is complete
                final_ = std::move(step.next.known);
                final_->frame = std::make_shared<const matrix_t>(final_->gram);
            } else {
                basis = step.next.fresh();
                // [Sxx R, 0] waits on disk while the pass reads T (the last pass's Sxx Q file,
                // rotated as complete_pass reads it);
                // [R, T] stays in memory: the pass beside it holds about what the restart just did
                // (2.60 GB against 2.53 at 224x224x3, counted by verified_memory.cpp), and writing it
                // out and reading it back cost 3–3.5 s a refinement pass there
                // (docs/benchmarks-log.md, the thirty-eighth session).
                next_ = std::move(step.next);
            }
        } else if (previous && plan_.done && (sketch(), plan_.done(s, blocks_, *previous))) {
            final_ = std::move(*previous);  // the plan's adaptive stop: this pass is the result
        } else {
            sketch();
            basis = plan_.basis(s, blocks_, previous ? &*previous : nullptr);
        }
        memory_mark("basis built");
        if (plan_.park && finished_ && !basis_parked_) {  // U is read again at the next restart only
            if (!parked_basis_) parked_basis_ = parked_basis(finished_->spec.basis);
            if (parked_basis_) {
                finished_->spec.basis = matrix_t();
                basis_parked_ = true;
            }
        }
    }
    if (mpi.active()) {
        std::string bytes = mpi.rank() == 0 ? matrix_bytes(basis) : std::string();
        basis = bytes_matrix(mpi.broadcast_bytes(std::move(bytes)));
    }
    if (basis.size() == 0) {  // the refinement stopped (every rank): the passes left read nothing
        pass_state_.reset();   // the other ranks' shares were merged into rank 0's result: the final
        stopped_ = true;       // reduce must not meet them again (rank 0 holds none)
        return;
    }
    if (pass_ > route_.passes()) ++refined_;
    restricted_moments_options o;
    o.basis = std::move(basis);
    o.classes = classes_;
    pass_state_.emplace(std::move(o));
    memory_mark("basis construction");
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
    if (pass >= route_.passes()) {  // a verification pass: the rest, when the passes stopped
        // (next_pass on rank 0: the restart found nothing to read, or the plan's `done`; this
        // pass then read nothing either)
        if (!stopped_) return 0;
        const std::uint64_t skip = passes() - 1 - pass;
        pass_ += skip;
        skipped_ += skip + (counted_ ? 0 : 1);
        counted_ = true;
        return skip;
    }
    const std::uint64_t skip = route_.passes_to_skip(pass);
    pass_ += skip;  // next_pass() then starts the verification
    return skip;
}

statistics verified_state::finish_sketch(const route_state& route) const {
    if (plan_.basis_reads_labels) return finish_statistics(route, plan_.center);
    return finish_without_labels(route, plan_.center);
}

const statistics& verified_state::finished() const {
    if (!finished_) finished_ = finish_sketch(route_);
    return *finished_;
}

const statistics& verified_state::sketch() const {
    finished();
    if (basis_parked_) {
        matrix_t u = matrix_t::from_shape({parked_basis_->rows(), parked_basis_->cols()});
        if (u.size()) parked_basis_->read_rows(0, u.shape(0), u.data());  // may throw: nothing changed
        finished_->spec.basis = std::move(u);
        basis_parked_ = false;
    }
    return *finished_;
}

void verified_state::forget_sketch() {
    finished_.reset();
    parked_basis_.reset();
    basis_parked_ = false;
}

statistics verified_state::sketch_without_basis() const {
    finished();
    if (basis_parked_) return *finished_;  // its basis is on disk: nothing to set aside
    matrix_t basis = std::move(finished_->spec.basis);  // put back below, also on a throw
    try {
        statistics s = *finished_;
        s.spec.basis = matrix_t();
        finished_->spec.basis = std::move(basis);
        return s;
    } catch (...) {
        finished_->spec.basis = std::move(basis);
        throw;
    }
}

restricted_statistics verified_state::verified() const {
    if (final_) return *final_;
    if (!pass_state_) throw std::logic_error("verified_state: no verification pass was run");
    restricted_statistics s = pass_state_->finish(plan_.center);
    if (!next_) return s;
    refinement_pass known = *next_;
    return complete_pass(std::move(known), std::move(s));
}

restricted_statistics verified_state::take_verified() {
    if (final_) {
        restricted_statistics s = std::move(*final_);
        final_.reset();
        return s;
    }
    if (!pass_state_) throw std::logic_error("verified_state: no verification pass was run");
    restricted_statistics s = std::move(*pass_state_).finish(plan_.center);
    pass_state_.reset();
    if (next_) {
        s = complete_pass(std::move(*next_), std::move(s));
        next_.reset();
    }
    return s;
}

refinement_report verified_state::refinement() const {
    refinement_report r;
    r.budget = plan_.passes > 0 ? plan_.passes - 1 : 0;
    r.passes = refined_;
    r.converged = stopped_;
    r.change = change_;
    r.estimate = estimate_;
    r.changes.assign(changes_.begin(), changes_.end());
    r.estimates.assign(estimates_.begin(), estimates_.end());
    return r;
}


// [magic v2][u64 pass][route][u64 blocks][each block state][u64 has pass][pass state]
// [u64 verification passes][u64 refinement passes started][u64 stopped][f64 change][curves]
// [u64 has next][u64 carried][statistics][u64 has final][statistics]
// [u64 verification passes skipped by the stop][u64 counted][f64 estimate]
// [part: the next pass's known Vᵀ Bd V][part: the final statistics'] (put_known_blocks)
// [every restart's change][their estimates] (version 5, "RAVERIF5"; version 4, "RAVERIF4":
// without them, loaded as none known, so the next restart or the analyses sweep the blocks in
// full and round differently from a run that did not stop, and the restarts before as NaN;
// version 3, "RAVERIF3": without the estimate, loaded as NaN with the last change taken as none, so
// the next restart cannot stop yet (the rule needs two changes); version 2, "RAVERIF2": without the
// skipped passes either, loaded as none skipped yet; version 1, "RAVERIFY": up to the pass state,
// loaded as full refinement passes.)
std::string verified_state::save() const { return bytes_of(*this); }

void verified_state::save_to(state_sink& out) const {
    out.put(verified_magic_v5, 8);
    out.u64(pass_);
    out.part([&](state_sink& o) { route_.save_to(o); });
    out.u64(blocks_.size());
    for (const patch_blocks& p : blocks_) out.part([&](state_sink& o) { o.framed(p); });
    out.u64(pass_state_ ? 1 : 0);
    if (pass_state_) out.part([&](state_sink& o) { o.framed(*pass_state_); });
    out.u64(planned_);
    out.u64(refined_);
    out.u64(stopped_ ? 1 : 0);
    out.f64(change_);
    put_vector(out, curves_);
    out.u64(next_ ? 1 : 0);
    if (next_) {
        out.u64(next_->carried);
        put_statistics(out, next_->known, &*next_);  // [R, T] and [Sxx R, 0] copied from their files
    }
    out.u64(final_ ? 1 : 0);
    if (final_) put_statistics(out, *final_);
    out.u64(skipped_);
    out.u64(counted_ ? 1 : 0);
    out.f64(estimate_);
    // Both branches lvalues: `c ? x : restricted_statistics()` copied x, a D x K statistics (0.9 GB at
    // 224x224x3 for the final one), each time the checkpoint was measured or written.
    static const restricted_statistics none;
    put_known_blocks(out, next_ ? next_->known : none);
    put_known_blocks(out, final_ ? *final_ : none);
    put_vector(out, changes_);
    put_vector(out, estimates_);
}

void verified_state::load(const std::string& bytes, const std::string& source) {
    load_from(state_source(bytes, loaded_at, source));
}

// Every part is read from where it lies (a checkpoint file by blocks, the carried [R, T] and
// [Sxx R, 0] straight into their spill files) into new objects; the state is replaced only once
// all of them are read and checked.
void verified_state::load_from(const state_source& src) {
    loaded_at = src.at();
    const std::string& source = src.name();
    const std::string head = src.bytes(0, std::min<std::uint64_t>(src.size(), 8));
    const bool v5 = head == std::string(verified_magic_v5, 8);
    const bool v4 = v5 || head == std::string(verified_magic_v4, 8);
    const bool v3 = v4 || head == std::string(verified_magic_v3, 8);
    const bool v2 = v3 || head == std::string(verified_magic_v2, 8);
    if (!v2 && head != std::string(magic, 8))
        throw file_error(source, checkpoint::header_bytes,
                         "this checkpoint holds no verification pass (written with --no-verify or by another "
                         "command): continue it with --no-verify");
    source_reader r{src, "verified state", 8};
    const std::uint64_t pass = r.u64();
    route_state route(route_.config());
    route.load_from(r.part());
    // Resumed past its sketch passes, where the run that wrote the checkpoint held the finished
    // sketch with its state and basis on disk (plan_.park): finished now, while the sketch's
    // state is the only large part read, then parked as that run held it. Finished at the next
    // restart or the analyses instead, the finish came on top of the verification pass's own
    // state: a finished 5,000-row checkpoint of the 224 demo, resumed, peaked at 3,254,440 kB
    // against the run's 2,759,964 (now 2,351,540; the memory trace's peaks, the forty-sixth
    // session).
    std::optional<statistics> finished;
    std::shared_ptr<io::row_spill> finished_basis;
    if (plan_.park && pass >= route.passes()) {
        finished = finish_sketch(route);
        park_or_keep(route);
        finished_basis = parked_basis(finished->spec.basis);
        if (finished_basis) finished->spec.basis = matrix_t();
    }
    const std::uint64_t count = r.u64();
    if (!adopt_blocks_ && count != blocks_.size())
        throw file_error(source, checkpoint::header_bytes, "the checkpoint's patch blocks are of other noises");
    if (count > r.left() / 8) throw file_error(source, checkpoint::header_bytes, "verified state truncated");
    std::vector<patch_blocks> blocks;
    for (std::uint64_t i = 0; i < count; ++i) {
        patch_blocks p = r.part().framed<patch_blocks>(" (patch blocks)");
        if (!adopt_blocks_ && p.config_hash() != blocks_[static_cast<std::size_t>(i)].config_hash())
            throw file_error(source, checkpoint::header_bytes, "the checkpoint's patch blocks are of other noises");
        blocks.push_back(std::move(p));
    }
    std::optional<restricted_moments> state;
    if (r.u64()) {
        state.emplace(r.part().framed<restricted_moments>(" (verification pass)"));
        if (state->k() == 0 || state->dim() != route_.config().dim)
            throw file_error(source, checkpoint::header_bytes, "the verification pass is of other data");
    }
    std::uint64_t refined = 0, planned = 0;
    bool stopped = false;
    double change = std::numeric_limits<double>::quiet_NaN();
    vector_t curves;
    std::optional<refinement_pass> next;
    std::optional<restricted_statistics> final_stats;
    if (v2) {
        planned = r.u64();
        if (!adopt_blocks_ && planned != 0 && planned != plan_.passes)
            throw file_error(source, checkpoint::header_bytes,
                             "the checkpoint was written for " + std::to_string(planned) +
                                 " verification passes (denoise: --refine " + std::to_string(planned ? planned - 1 : 0) +
                                 "), this run asks for " + std::to_string(plan_.passes) + ": resume with the same --refine");
        refined = r.u64();
        stopped = r.u64() != 0;
        change = r.f64();
        curves = get_vector(r);
        if (r.u64()) {
            const std::uint64_t carried = r.u64();
            // Every shape checked (carried < K), then [R, T] and [Sxx R, 0] copied into spill files,
            // as the pass that wrote them held them.
            refinement_pass p = read_statistics(r.part(), carried, io::spill_directory());
            if (p.dim() != route_.config().dim || p.carried > p.k() || !state || state->k() != p.k() - p.carried)
                throw file_error(source, checkpoint::header_bytes, "the refinement pass is of other data");
            next = std::move(p);
        }
        if (r.u64()) {
            if (next)  // next_pass ends the pass it completes before it keeps the result: never both
                throw file_error(source, r.here() - 8, "the verified state holds both a refinement pass being read "
                                                       "and the result of the passes");
            final_stats = std::move(read_statistics(r.part()).known);
            if (final_stats->dim() != route_.config().dim)
                throw file_error(source, checkpoint::header_bytes, "the refinement's statistics are of other data");
        }
    }
    std::uint64_t skipped = 0;
    bool counted = false;
    if (v3) {
        skipped = r.u64();
        counted = r.u64() != 0;
        if (planned != 0 && skipped > planned)
            throw file_error(source, checkpoint::header_bytes, "the checkpoint skipped more passes than it planned");
    }
    double estimate = std::numeric_limits<double>::quiet_NaN();
    if (v4) estimate = r.f64();
    else change = std::numeric_limits<double>::quiet_NaN();  // the old rule's change: the new one needs two
    // Every restart's change and estimate (rank 0's: the restarts run there): one per refinement
    // pass started and the one that stopped the passes. Older versions: NaN, as many.
    const std::uint64_t restarts = plan_.restart ? refined + (stopped ? 1 : 0) : 0;
    vector_t changes = xt::zeros<double>({static_cast<std::size_t>(std::min<std::uint64_t>(restarts, 1u << 20))});
    changes.fill(std::numeric_limits<double>::quiet_NaN());
    vector_t estimates = changes;
    if (v5) {
        restricted_statistics none;
        read_known_blocks(r.part(), next ? next->known : none, next ? next->carried : 0, next ? next->dim() : 0);
        read_known_blocks(r.part(), final_stats ? *final_stats : none, final_stats ? final_stats->k() : 0,
                          final_stats ? final_stats->dim() : 0);
        const std::uint64_t at = r.here();
        changes = get_vector(r);
        estimates = get_vector(r);
        if (changes.size() != estimates.size() || changes.size() > refined + 1)
            throw file_error(source, at, "the verified state's refinement history (" + std::to_string(changes.size()) +
                                             " changes, " + std::to_string(estimates.size()) + " estimates) does not fit its " +
                                             std::to_string(refined) + " refinement pass(es)");
    }
    if (r.left()) throw file_error(source, checkpoint::header_bytes, "unexpected bytes after the verified state");
    next_ = std::move(next);
    final_ = std::move(final_stats);
    planned_ = adopt_blocks_ ? planned : plan_.passes;
    curves_ = std::move(curves);
    refined_ = refined;
    stopped_ = stopped;
    change_ = change;
    estimate_ = estimate;
    changes_ = std::move(changes);
    estimates_ = std::move(estimates);
    skipped_ = skipped;
    counted_ = counted;
    route_ = std::move(route);
    blocks_ = std::move(blocks);
    pass_state_ = std::move(state);
    forget_sketch();
    finished_ = std::move(finished);
    parked_basis_ = std::move(finished_basis);
    basis_parked_ = parked_basis_ != nullptr;
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
    if (planned_ && other->planned_ && planned_ != other->planned_)
        throw std::invalid_argument("cannot merge: the runs were for different numbers of verification passes (--refine)");
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
    forget_sketch();
    pass_ = std::min({pass_, other->pass_, last_sketch});
    pass_state_.reset();
    next_.reset();
    final_.reset();
    curves_ = vector_t();
    refined_ = 0;
    stopped_ = false;
    change_ = std::numeric_limits<double>::quiet_NaN();
    estimate_ = std::numeric_limits<double>::quiet_NaN();
    changes_ = vector_t();
    estimates_ = vector_t();
    skipped_ = 0;  // the merged state verifies again
    counted_ = false;
    if (!planned_) planned_ = other->planned_;
}

verified_state verified_state::for_merge(const run_config& config, const std::string& bytes, const std::string& source) {
    verified_state s(config, verify_plan{});
    s.adopt_blocks_ = true;
    s.load(bytes, source);
    s.adopt_blocks_ = false;
    return s;
}

}  // namespace recalign::cli
