#include "verified_state.hpp"

#include <algorithm>
#include <chrono>
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
#include "state_bytes.hpp"

namespace recalign::cli {

namespace {
// Distinguishes a verified state from a route state (which starts with a u64 length) in
// checkpoints: `merge` and --from name it instead of misreading it.
const char* const magic = verified_magic;
}  // namespace

verified_state::verified_state(const run_config& config, verify_plan plan)
    : route_(config), plan_(std::move(plan)), classes_(static_cast<std::size_t>(config.classes)) {
    planned_ = plan_.passes;
    for (const patch_blocks_options& o : plan_.blocks) blocks_.emplace_back(o);
}

namespace {
// A basis as bytes: [u64 rows][u64 cols][row-major doubles] (rank 0 -> every rank).
std::string matrix_bytes(const matrix_t& m) {
    std::string s;
    put_u64(s, m.shape(0));
    put_u64(s, m.shape(1));
    if (m.size()) s.append(reinterpret_cast<const char*>(m.data()), m.size() * sizeof(double));
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
    if (m.size()) std::memcpy(m.data(), s.data() + 16, s.size() - 16);  // an empty matrix's data() may be null
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
        if (plan_.park) route_.park(io::spill_directory());  // only a checkpoint reads it from now on
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
            curves_ = std::move(step.curves);
            if (step.stopped) {
                final_ = std::move(*previous);
            } else if (step.next.k() == step.next.carried) {  // nothing new to read: R is complete
                final_ = std::move(step.next.known);
                final_->frame = std::make_shared<const matrix_t>(final_->gram);
            } else {
                basis = step.next.fresh();
                next_ = std::move(step.next);
                // [R, T] and [Sxx R, 0] wait on disk while the pass reads T (io/spill.hpp):
                // complete_pass reads them back.
                next_->spill(io::spill_directory());
            }
        } else if (previous && plan_.done && (sketch(), plan_.done(s, blocks_, *previous))) {
            final_ = std::move(*previous);  // the plan's adaptive stop: this pass is the result
        } else {
            sketch();
            basis = plan_.basis(s, blocks_, previous ? &*previous : nullptr);
        }
        memory_mark("basis built");
        if (plan_.park && finished_ && !basis_parked_) {  // U is read again at the next restart only
            if (!parked_basis_) {
                const matrix_t& u = finished_->spec.basis;
                auto file = std::make_shared<io::row_spill>(io::spill_directory(), u.shape(0), u.shape(1));
                if (u.size()) file->write_rows(0, u.shape(0), u.data());
                parked_basis_ = std::move(file);
            }
            finished_->spec.basis = matrix_t();
            basis_parked_ = true;
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

const statistics& verified_state::finished() const {
    if (!finished_) finished_ = finish_statistics(route_, plan_.center);
    return *finished_;
}

const statistics& verified_state::sketch() const {
    finished();
    if (basis_parked_) {
        matrix_t u = xt::empty<double>({parked_basis_->rows(), parked_basis_->cols()});
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
    return r;
}

namespace {
// Restricted statistics as bytes (incremental refinement's carried and final statistics).
void put_f64(std::string& out, double v) {
    std::uint64_t u = 0;
    std::memcpy(&u, &v, 8);
    put_u64(out, u);
}
double get_f64(state_reader& r) {
    const std::uint64_t u = r.u64();
    double v = 0;
    std::memcpy(&v, &u, 8);
    return v;
}
void put_vector(std::string& out, const vector_t& v) {
    put_u64(out, v.size());
    for (double x : v) put_f64(out, x);
}
vector_t get_vector(state_reader& r) {
    const std::uint64_t n = r.u64();
    if (n > r.bytes.size() / 8) r.truncated();
    vector_t v = xt::zeros<double>({static_cast<std::size_t>(n)});
    for (double& x : v) x = get_f64(r);
    return v;
}
// The refinement statistics are appended to the checkpoint's bytes in place (a checkpoint
// written during a refinement pass would otherwise hold the carried [R, T] and [Sxx R, 0],
// read back from disk, two or three times over): matrix_bytes's layout, the spilled ones read
// from their files straight into the string, whose room is reserved first (statistics_size).
void append_matrix(std::string& out, std::size_t rows, std::size_t cols, const double* data) {
    put_u64(out, 16 + checked_mul(checked_mul(rows, cols, "basis"), 8, "basis"));  // put_part's length
    put_u64(out, rows);
    put_u64(out, cols);
    if (rows && cols) out.append(reinterpret_cast<const char*>(data), rows * cols * sizeof(double));
}
void append_spilled(std::string& out, const io::row_spill& f) {
    const std::size_t bytes = checked_mul(checked_mul(f.rows(), f.cols(), "basis"), 8, "basis");
    put_u64(out, 16 + bytes);
    put_u64(out, f.rows());
    put_u64(out, f.cols());
    const std::size_t at = out.size();
    out.resize(at + bytes);
    if (bytes) f.read_rows(0, f.rows(), reinterpret_cast<double*>(&out[at]));
}
void append_matrix(std::string& out, const matrix_t& m) { append_matrix(out, m.shape(0), m.shape(1), m.data()); }
std::size_t matrix_size(std::size_t rows, std::size_t cols) { return 24 + rows * cols * sizeof(double); }
// `spilled`: the pass whose basis is on disk (s is its `known`); Sxx V may be on disk (sv_stored).
// The statistics as one part ([u64 length][bytes]) appended to `out`.
std::size_t statistics_size(const restricted_statistics& s, const refinement_pass* spilled = nullptr) {
    const bool disk = spilled && spilled->spilled();
    std::size_t n = 16;
    n += disk ? matrix_size(spilled->stored_basis->rows(), spilled->stored_basis->cols())
              : matrix_size(s.basis.shape(0), s.basis.shape(1));
    n += s.sv_stored ? matrix_size(s.sv_stored->rows(), s.sv_stored->cols()) : matrix_size(s.sv.shape(0), s.sv.shape(1));
    for (const matrix_t* m : {&s.vsv, &s.gram, &s.svsv}) n += matrix_size(m->shape(0), m->shape(1));
    n += 8;
    if (s.cross)
        n += 16 + matrix_size(s.cross->sxy.shape(0), s.cross->sxy.shape(1)) +
             matrix_size(s.cross->syy.shape(0), s.cross->syy.shape(1)) + 8 + 8 * s.cross->class_counts.size();
    return 8 + n;
}
void append_statistics(std::string& out, const restricted_statistics& s, const refinement_pass* spilled = nullptr) {
    const std::size_t start = out.size(), size = statistics_size(s, spilled);
    put_u64(out, size - 8);
    put_u64(out, static_cast<std::uint64_t>(s.center));
    put_u64(out, s.n);
    const bool disk = spilled && spilled->spilled();
    if (disk) append_spilled(out, *spilled->stored_basis);
    else append_matrix(out, s.basis);
    if (s.sv_stored) append_spilled(out, *s.sv_stored);
    else append_matrix(out, s.sv);
    for (const matrix_t* m : {&s.vsv, &s.gram, &s.svsv}) append_matrix(out, *m);
    put_u64(out, s.cross ? 1 : 0);
    if (s.cross) {
        put_u64(out, static_cast<std::uint64_t>(s.cross->center));
        put_u64(out, s.cross->n);
        append_matrix(out, s.cross->sxy);
        append_matrix(out, s.cross->syy);
        put_vector(out, s.cross->class_counts);
    }
    if (out.size() - start != size) throw std::logic_error("verified_state: the refinement statistics' size");
}
// `at`: where `bytes` start in the file `source` (the offsets of its errors). `carried`: a
// refinement pass's known statistics (the D x K basis and Sxx V; the products only of its
// first `carried` columns); none: a whole pass's (K x K products). complete_pass and the
// analyses index every matrix by the basis's D and K without checking (the carried part has
// no checksum of its own): a matrix that does not fit is refused at its offset.
restricted_statistics bytes_statistics(const std::string& bytes, const std::string& source, std::uint64_t at,
                                       std::optional<std::uint64_t> carried = std::nullopt) {
    state_reader r{bytes, source, "verified state (refinement statistics)"};
    auto here = [&] { return at + (bytes.size() - r.bytes.size()); };
    auto centering_of = [&](const char* what) {
        const std::uint64_t where = here(), c = r.u64();
        if (c != 1 && c != 2)
            throw file_error(source, where, std::string("the refinement statistics' ") + what + " is " +
                                                std::to_string(c) + ", neither uncentered (1) nor centered (2)");
        return static_cast<centering>(c);
    };
    auto fits = [&](const matrix_t& m, std::uint64_t where, const char* what, std::size_t rows, std::size_t cols,
                    bool empty_ok) {
        if ((m.shape(0) == rows && m.shape(1) == cols) || (empty_ok && m.size() == 0)) return;
        throw file_error(source, where, std::string("the refinement statistics' matrices do not fit their basis (") +
                                            what + " " + std::to_string(m.shape(0)) + " x " + std::to_string(m.shape(1)) +
                                            " where " + std::to_string(rows) + " x " + std::to_string(cols) + ")");
    };
    restricted_statistics s;
    s.center = centering_of("centering");
    s.n = r.u64();
    std::uint64_t where[5] = {};
    std::size_t i = 0;
    for (matrix_t* m : {&s.basis, &s.sv, &s.vsv, &s.gram, &s.svsv}) {
        where[i++] = here();
        *m = bytes_matrix(r.part());
    }
    const std::size_t d = s.basis.shape(0), m = s.basis.shape(1);
    if (carried && *carried >= m)  // a pass being read has new directions (fresh(): D x (K - carried))
        throw file_error(source, where[0], "the carried statistics do not fit their basis (" + std::to_string(*carried) +
                                               " carried of " + std::to_string(m) +
                                               " columns: a pass being read has new directions)");
    const std::size_t k = carried ? static_cast<std::size_t>(*carried) : m;
    fits(s.sv, where[1], "Sxx V", d, m, false);
    fits(s.vsv, where[2], "V' Sxx V", k, k, false);
    fits(s.gram, where[3], "Gram", k, k, true);  // before its products: none
    fits(s.svsv, where[4], "Gram products", k, k, s.gram.size() == 0);
    if (r.u64()) {
        cross_moments c;
        c.center = centering_of("cross moments' centering");
        c.n = r.u64();
        const std::uint64_t sxy_at = here();
        c.sxy = bytes_matrix(r.part());
        fits(c.sxy, sxy_at, "Sxy", k, c.sxy.shape(1), false);
        const std::size_t nc = c.sxy.shape(1);
        const std::uint64_t syy_at = here();
        c.syy = bytes_matrix(r.part());
        fits(c.syy, syy_at, "Syy", nc, nc, true);  // class ids: Syy described by the class counts
        const std::uint64_t counts_at = here();
        c.class_counts = get_vector(r);
        if (c.class_counts.size() != (c.syy.size() ? 0 : nc))
            throw file_error(source, counts_at, "the refinement statistics' class counts do not fit their classes");
        s.cross = std::move(c);
    }
    if (!r.bytes.empty()) r.truncated();
    if (s.gram.size()) s.frame = std::make_shared<const matrix_t>(s.gram);
    return s;
}
}  // namespace

// [magic v2][u64 pass][route][u64 blocks][each block state][u64 has pass][pass state]
// [u64 verification passes][u64 refinement passes started][u64 stopped][f64 change][curves]
// [u64 has next][u64 carried][statistics][u64 has final][statistics]
// [u64 verification passes skipped by the stop][u64 counted][f64 estimate] (version 4, "RAVERIF4";
// version 3, "RAVERIF3": without the estimate, loaded as NaN with the last change taken as none, so
// the next restart cannot stop yet (the rule needs two changes); version 2, "RAVERIF2": without the
// skipped passes either, loaded as none skipped yet; version 1, "RAVERIFY": up to the pass state,
// loaded as full refinement passes.)
std::string verified_state::save() const {
    std::string out(verified_magic_v4, 8);
    put_u64(out, pass_);
    put_part(out, route_.save());
    put_u64(out, blocks_.size());
    for (const patch_blocks& p : blocks_) put_part(out, checkpoint::to_bytes(p));
    put_u64(out, pass_state_ ? 1 : 0);
    if (pass_state_) put_part(out, checkpoint::to_bytes(*pass_state_));
    put_u64(out, planned_);
    put_u64(out, refined_);
    put_u64(out, stopped_ ? 1 : 0);
    put_f64(out, change_);
    put_vector(out, curves_);
    // The refinement statistics in place, their room reserved (no regrowth of a string that
    // holds them: statistics_size).
    out.reserve(out.size() + 16 + (next_ ? statistics_size(next_->known, &*next_) : 0) + 8 +
                (final_ ? statistics_size(*final_) : 0) + 24);
    put_u64(out, next_ ? 1 : 0);
    if (next_) {
        put_u64(out, next_->carried);
        append_statistics(out, next_->known, &*next_);
    }
    put_u64(out, final_ ? 1 : 0);
    if (final_) append_statistics(out, *final_);
    put_u64(out, skipped_);
    put_u64(out, counted_ ? 1 : 0);
    put_f64(out, estimate_);
    return out;
}

void verified_state::load(const std::string& bytes, const std::string& source) {
    const bool v4 = bytes.size() >= 8 && bytes.compare(0, 8, std::string(verified_magic_v4, 8)) == 0;
    const bool v3 = v4 || (bytes.size() >= 8 && bytes.compare(0, 8, std::string(verified_magic_v3, 8)) == 0);
    const bool v2 = v3 || (bytes.size() >= 8 && bytes.compare(0, 8, std::string(verified_magic_v2, 8)) == 0);
    if (!v2 && (bytes.size() < 8 || bytes.compare(0, 8, std::string(magic, 8)) != 0))
        throw file_error(source, checkpoint::header_bytes,
                         "this checkpoint holds no verification pass (written with --no-verify or by another "
                         "command): continue it with --no-verify");
    state_reader r{std::string_view(bytes).substr(8), source, "verified state"};
    auto here = [&] { return loaded_at + bytes.size() - r.bytes.size(); };  // r's position in the file
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
        change = get_f64(r);
        curves = get_vector(r);
        if (r.u64()) {
            refinement_pass p;
            const std::uint64_t carried = r.u64();
            const std::uint64_t stats_at = here() + 8;
            p.known = bytes_statistics(r.part(), source, stats_at, carried);  // every shape, carried < K
            p.carried = static_cast<std::size_t>(carried);
            if (p.known.dim() != route_.config().dim || p.carried > p.k() || !state || state->k() != p.k() - p.carried)
                throw file_error(source, checkpoint::header_bytes, "the refinement pass is of other data");
            p.spill(io::spill_directory());  // as the pass that wrote it held it
            next = std::move(p);
        }
        if (r.u64()) {
            const std::uint64_t stats_at = here() + 8;
            if (next)  // next_pass ends the pass it completes before it keeps the result: never both
                throw file_error(source, stats_at - 16, "the verified state holds both a refinement pass being read "
                                                        "and the result of the passes");
            final_stats = bytes_statistics(r.part(), source, stats_at);
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
    if (v4) estimate = get_f64(r);
    else change = std::numeric_limits<double>::quiet_NaN();  // the old rule's change: the new one needs two
    if (!r.bytes.empty()) throw file_error(source, checkpoint::header_bytes, "unexpected bytes after the verified state");
    // Resumed in a verification pass: the sketch's state on disk, as the run that wrote it held it.
    if (plan_.park && state && pass >= route.passes()) route.park(io::spill_directory());
    next_ = std::move(next);
    final_ = std::move(final_stats);
    planned_ = adopt_blocks_ ? planned : plan_.passes;
    curves_ = std::move(curves);
    refined_ = refined;
    stopped_ = stopped;
    change_ = change;
    estimate_ = estimate;
    skipped_ = skipped;
    counted_ = counted;
    route_ = std::move(route);
    blocks_ = std::move(blocks);
    pass_state_ = std::move(state);
    forget_sketch();
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
