// The incremental refinement passes of denoise on a sketch route (MATH.md §7,
// recalign/align/incremental_refinement.hpp) for recalign.VerifiedDenoising: DenoisingRefinement
// holds what the CLI's verified_state holds between passes (the carried statistics of the pass
// being read, the stopping curves, the passes started, the result once stopped) and drives the
// library's denoising_restart / complete_pass exactly as tools/recalign/verified_state.cpp does,
// so Python's passes read the same directions and end on the same bits.
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common.hpp"
#include "recalign/align/incremental_refinement.hpp"
#include "recalign/core/checked.hpp"
#include "recalign/core/errors.hpp"
#include "gram_cache.hpp"
#include "recalign/io/spill.hpp"

namespace recalign::python {

namespace {

using blocks_g = guarded<patch_blocks>;
using restricted_g = guarded<restricted_moments>;

struct refinement_state {
    std::optional<refinement_pass> next;          // the pass being read: R known, T read
    std::optional<restricted_statistics> final_;  // the result, once the passes ended
    vector_t curves;                              // the last restart's stopping curves
    double change = std::numeric_limits<double>::quiet_NaN();
    double estimate = std::numeric_limits<double>::quiet_NaN();  // the last restart's refinement_estimate
    vector_t changes, estimates;  // every restart's change and estimate, in turn
    std::uint64_t passes = 0;  // refinement passes started (each reads its new directions T)
    bool stopped = false;      // the adaptive stop (or nothing new to read) ended the passes
};
using refinement_g = guarded<refinement_state>;

// ---- bytes: [u64 version 3][u64 passes][u64 stopped][f64 change][curves][u64 has next]
// [u64 carried][statistics][u64 has final][statistics][f64 estimate][known blocks of next]
// [known blocks of final][every restart's change][their estimates]; statistics as the CLI's
// checkpoint (verified_state.cpp): center, n, basis, sv, vsv, gram, svsv, cross (frame = gram on
// load); known blocks (what the statistics know
// of Vᵀ Bd V, restricted_statistics::blocks_known) as its put_known_blocks: [u64 count] then
// [u64 geometry][u64 D][u64 n][matrix] each; the changes and estimates as vectors. Version 2 (no
// known blocks, no history): loads with none known, as the CLI's RAVERIF4 (the next restart
// sweeps the blocks in full), and NaN for each restart before. Version 1 (no estimate
// either, the older rule's change): loads with both NaN, as the CLI's RAVERIF3.
constexpr std::uint64_t bytes_version = 3;

void put_u64(std::string& s, std::uint64_t v) { s.append(reinterpret_cast<const char*>(&v), 8); }
void put_f64(std::string& s, double v) { s.append(reinterpret_cast<const char*>(&v), 8); }
void put_matrix(std::string& s, const matrix_t& m) {
    put_u64(s, m.shape(0));
    put_u64(s, m.shape(1));
    if (m.size()) s.append(reinterpret_cast<const char*>(m.data()), m.size() * sizeof(double));
}
void put_vector(std::string& s, const vector_t& v) {
    put_u64(s, v.size());
    if (v.size()) s.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(double));
}
void put_statistics(std::string& s, const restricted_statistics& r) {
    put_u64(s, static_cast<std::uint64_t>(r.center));
    put_u64(s, r.n);
    for (const matrix_t* m : {&r.basis, &r.sv, &r.vsv, &r.gram, &r.svsv}) put_matrix(s, *m);
    put_u64(s, r.cross ? 1 : 0);
    if (r.cross) {
        put_u64(s, static_cast<std::uint64_t>(r.cross->center));
        put_u64(s, r.cross->n);
        put_matrix(s, r.cross->sxy);
        put_matrix(s, r.cross->syy);
        put_vector(s, r.cross->class_counts);
    }
}

void put_known_blocks(std::string& s, const restricted_statistics& r) {
    put_u64(s, r.blocks_known.size());
    for (const known_blocks& kb : r.blocks_known) {
        put_u64(s, kb.geometry);
        put_u64(s, kb.dim);
        put_u64(s, kb.n);
        put_matrix(s, kb.leading);
    }
}

// v with x after its last element.
vector_t appended(const vector_t& v, double x) {
    vector_t out = xt::zeros<double>({v.size() + 1});
    std::copy(v.begin(), v.end(), out.begin());
    out(v.size()) = x;
    return out;
}

struct refinement_reader {
    const std::string& bytes;
    std::string source;
    std::size_t at = 0;
    [[noreturn]] void fail(const std::string& what) const {
        throw file_error(source, at, "DenoisingRefinement: " + what);
    }
    std::uint64_t u64() {
        if (bytes.size() - at < 8) fail("truncated");
        std::uint64_t v = 0;
        std::memcpy(&v, bytes.data() + at, 8);
        at += 8;
        return v;
    }
    double f64() {
        const std::uint64_t u = u64();
        double v = 0;
        std::memcpy(&v, &u, 8);
        return v;
    }
    void doubles(double* out, std::uint64_t count) {
        if (count > (bytes.size() - at) / 8) fail("truncated");
        if (count) std::memcpy(out, bytes.data() + at, count * 8);  // an empty matrix's data() may be null
        at += count * 8;
    }
    matrix_t matrix() {
        const std::uint64_t rows = u64(), cols = u64();
        const std::uint64_t count = checked_mul(rows, cols, "DenoisingRefinement matrix");
        if (count > (bytes.size() - at) / 8) fail("truncated");
        matrix_t m = xt::zeros<double>({static_cast<std::size_t>(rows), static_cast<std::size_t>(cols)});
        doubles(m.data(), count);
        return m;
    }
    vector_t vector() {
        const std::uint64_t n = u64();
        if (n > (bytes.size() - at) / 8) fail("truncated");
        vector_t v = xt::zeros<double>({static_cast<std::size_t>(n)});
        doubles(v.data(), n);
        return v;
    }
    centering center() {
        const std::uint64_t c = u64();
        if (c != static_cast<std::uint64_t>(centering::uncentered) && c != static_cast<std::uint64_t>(centering::centered))
            fail("bad centering");
        return static_cast<centering>(c);
    }
    // The matrix just read (it started at `where`) is rows x cols, or empty where `empty_ok`: the
    // analyses and complete_pass index every part by the basis's D and K without checking.
    void fits(const matrix_t& m, std::size_t where, std::size_t rows, std::size_t cols, bool empty_ok = false) {
        if ((m.shape(0) == rows && m.shape(1) == cols) || (empty_ok && m.size() == 0)) return;
        at = where;
        fail("the statistics' matrices do not fit their basis (" + std::to_string(m.shape(0)) + " x " +
             std::to_string(m.shape(1)) + " where " + std::to_string(rows) + " x " + std::to_string(cols) + ")");
    }
    // `carried`: a refinement pass's known statistics (D x K basis and Sxx V, the products only of
    // its first `carried` columns, R); none: a whole pass's (K x K products).
    restricted_statistics statistics(std::optional<std::uint64_t> carried = std::nullopt) {
        restricted_statistics s;
        s.center = center();
        s.n = u64();
        std::size_t where[5] = {};
        std::size_t i = 0;
        for (matrix_t* m : {&s.basis, &s.sv, &s.vsv, &s.gram, &s.svsv}) {
            where[i++] = at;
            *m = matrix();
        }
        const std::size_t d = s.basis.shape(0), m = s.basis.shape(1);
        if (carried && *carried >= m) {  // a pass being read has new directions T (fresh(): D x (K − carried))
            at = where[0];
            fail("the carried statistics do not fit their basis (" + std::to_string(*carried) + " carried of " +
                 std::to_string(m) + " columns: a pass being read has new directions)");
        }
        const std::size_t k = carried ? static_cast<std::size_t>(*carried) : m;
        fits(s.sv, where[1], d, m);
        fits(s.vsv, where[2], k, k);
        fits(s.gram, where[3], k, k, true);  // before products(): none
        fits(s.svsv, where[4], k, k, s.gram.size() == 0);
        if (u64()) {
            cross_moments c;
            c.center = center();
            c.n = u64();
            const std::size_t sxy_at = at;
            c.sxy = matrix();
            fits(c.sxy, sxy_at, k, c.sxy.shape(1));
            const std::size_t nc = c.sxy.shape(1), syy_at = at;
            c.syy = matrix();
            fits(c.syy, syy_at, nc, nc, true);  // class ids: Syy described by the class counts
            const std::size_t counts_at = at;
            c.class_counts = vector();
            if (c.class_counts.size() != (c.syy.size() ? 0 : nc)) {
                at = counts_at;
                fail("the statistics' class counts do not fit their classes");
            }
            s.cross = std::move(c);
        }
        if (s.gram.size()) s.frame = std::make_shared<const matrix_t>(s.gram);
        return s;
    }
    // What `s` (of dimension d) knows of Vᵀ Bd V: each square, at most k x k (the columns it may
    // know: a pass being read's carried ones, a result's K), of s's D and n.
    void known_blocks_of(restricted_statistics& s, std::size_t k, std::size_t d) {
        const std::uint64_t count = u64();
        if (count > (bytes.size() - at) / 32) fail("truncated");  // each entry holds at least 4 u64
        std::vector<known_blocks> known;
        for (std::uint64_t i = 0; i < count; ++i) {
            known_blocks kb;
            kb.geometry = u64();
            kb.dim = u64();
            kb.n = u64();
            const std::size_t where = at;
            kb.leading = matrix();
            if (kb.leading.shape(0) != kb.leading.shape(1) || kb.leading.shape(0) > k || kb.dim != d || kb.n != s.n) {
                at = where;
                fail("the known patch blocks (" + std::to_string(kb.leading.shape(0)) + " x " +
                     std::to_string(kb.leading.shape(1)) + ", D = " + std::to_string(kb.dim) + ", n = " +
                     std::to_string(kb.n) + ") do not fit their statistics (" + std::to_string(k) +
                     " known columns, D = " + std::to_string(d) + ", n = " + std::to_string(s.n) + ")");
            }
            known.push_back(std::move(kb));
        }
        s.blocks_known = std::move(known);
    }
};

std::string to_bytes(const refinement_state& r) {
    std::string s;
    put_u64(s, bytes_version);
    put_u64(s, r.passes);
    put_u64(s, r.stopped ? 1 : 0);
    put_f64(s, r.change);
    put_vector(s, r.curves);
    put_u64(s, r.next ? 1 : 0);
    if (r.next) {
        put_u64(s, r.next->carried);
        refinement_pass whole = *r.next;  // read back from its spill files (a copy: the state stays spilled)
        whole.restore();
        whole.known.load_sv();
        put_statistics(s, whole.known);
    }
    put_u64(s, r.final_ ? 1 : 0);
    if (r.final_) put_statistics(s, *r.final_);
    put_f64(s, r.estimate);
    put_known_blocks(s, r.next ? r.next->known : restricted_statistics());
    put_known_blocks(s, r.final_ ? *r.final_ : restricted_statistics());
    put_vector(s, r.changes);
    put_vector(s, r.estimates);
    return s;
}

refinement_state from_bytes(const std::string& bytes, const std::string& source) {
    refinement_reader in{bytes, source};
    const std::uint64_t version = in.u64();
    if (version < 1 || version > bytes_version) in.fail("unsupported version");
    refinement_state r;
    r.passes = in.u64();
    r.stopped = in.u64() != 0;
    r.change = in.f64();
    r.curves = in.vector();
    if (in.u64()) {
        refinement_pass p;
        const std::uint64_t carried = in.u64();
        p.known = in.statistics(carried);  // checks carried <= K and every shape
        p.carried = static_cast<std::size_t>(carried);
        p.spill(io::spill_directory());  // as close() leaves a pass being read
        r.next = std::move(p);
    }
    if (in.u64()) r.final_ = in.statistics();
    if (version >= 2) r.estimate = in.f64();
    else r.change = std::numeric_limits<double>::quiet_NaN();  // the older rule's: the new one needs two changes
    if (version >= 3) {
        restricted_statistics none;
        in.known_blocks_of(r.next ? r.next->known : none, r.next ? r.next->carried : 0, r.next ? r.next->dim() : 0);
        in.known_blocks_of(r.final_ ? *r.final_ : none, r.final_ ? r.final_->k() : 0, r.final_ ? r.final_->dim() : 0);
        const std::size_t at = in.at;
        r.changes = in.vector();
        r.estimates = in.vector();
        if (r.changes.size() != r.estimates.size() || r.changes.size() > r.passes + 1) {
            in.at = at;
            in.fail("the refinement history (" + std::to_string(r.changes.size()) + " changes, " +
                    std::to_string(r.estimates.size()) + " estimates) does not fit its " + std::to_string(r.passes) +
                    " refinement pass(es)");
        }
    } else {  // one restart per refinement pass started, and the one that stopped them: not known
        const std::uint64_t restarts = std::min<std::uint64_t>(r.passes + (r.stopped ? 1 : 0), 1u << 20);
        r.changes = xt::zeros<double>({static_cast<std::size_t>(restarts)});
        r.changes.fill(std::numeric_limits<double>::quiet_NaN());
        r.estimates = r.changes;
    }
    if (in.at != bytes.size()) in.fail("unexpected bytes after the state");
    if (r.stopped && !r.final_) in.fail("stopped without its result");
    if (r.next && r.final_) in.fail("both a pass being read and the result of the passes");
    return r;
}

// What complete_pass and denoising_restart would refuse, checked before close() spends the
// accumulator or the carried statistics (strong guarantee: a refused close changes nothing).
void check_close(const refinement_state& s, const restricted_moments& acc, const spectrum& sketch, centering center,
                 const std::vector<noise_spec>& noises, const std::vector<const patch_blocks*>& blocks, bool restart) {
    auto refuse = [](const std::string& why) { throw std::invalid_argument("DenoisingRefinement.close: " + why); };
    const std::size_t d = acc.dim();
    const std::size_t classes = acc.options().classes;
    // Rows of the pass's [R, T], in memory or (while the pass is read) on disk, a block at a time.
    std::vector<double> buffer;
    auto next_rows = [&](std::size_t r0, std::size_t n) -> const double* {
        const refinement_pass& p = *s.next;
        if (!p.spilled()) return &p.known.basis(r0, 0);
        buffer.resize(static_cast<std::size_t>(checked_mul(n, p.k(), "a block of the pass's rows")));
        p.stored_basis->read_rows(r0, n, buffer.data());
        return buffer.data();
    };
    constexpr std::size_t block = 256;
    if (s.next) {
        const refinement_pass& p = *s.next;
        const std::size_t a = p.carried, b = p.k() - a, m = p.k();
        const matrix_t& t = acc.basis();
        for (std::size_t r0 = 0; r0 < d && b; r0 += block) {
            const std::size_t n = std::min(block, d - r0);
            const double* rows = next_rows(r0, n);
            for (std::size_t i = 0; i < n; ++i)
                if (std::memcmp(&t(r0 + i, 0), rows + i * m + a, b * sizeof(double)) != 0)
                    refuse("the pass did not read the new directions of this refinement (fresh())");
        }
        if (center != p.known.center || p.known.cross.has_value() != (classes > 0) ||
            (p.known.cross && p.known.cross->sxy.shape(1) != classes))
            refuse("the pass is not of the same centering and classes as the carried statistics");
    }
    if (!restart) return;
    const std::size_t r = sketch.rank(), m = s.next ? s.next->k() : acc.basis().shape(1);
    if (r > m || sketch.basis.shape(0) != d) refuse("the sketch and the pass are not of the same data");
    for (std::size_t r0 = 0; r0 < d && r; r0 += block) {
        const std::size_t n = std::min(block, d - r0);
        const double* rows = s.next ? next_rows(r0, n) : &acc.basis()(r0, 0);
        for (std::size_t i = 0; i < n; ++i)
            if (std::memcmp(rows + i * m, &sketch.basis(r0 + i, 0), r * sizeof(double)) != 0)
                refuse("the verification pass's basis does not start with the sketch's U");
    }
    for (std::size_t i = 0; i < noises.size(); ++i) {
        if (!blocks[i] || noises[i].draws > 0 || noises[i].family == noise_family::gaussian) continue;
        if (blocks[i]->dim() != d || blocks[i]->n() != acc.n())
            refuse("the patch blocks (D = " + std::to_string(blocks[i]->dim()) + ", n = " +
                   std::to_string(blocks[i]->n()) + ") are not of this data (D = " + std::to_string(d) +
                   ", n = " + std::to_string(acc.n()) + ")");
        blocks[i]->coefficients(noises[i]);  // a noise of another geometry throws
    }
}

// Every distinct PatchBlocks of `blocks` locked (one noise geometry may serve several noises:
// each mutex once), with the GIL released, while f(the blocks as pointers) runs.
template <class F>
auto with_all_blocks(const std::vector<const blocks_g*>& blocks, F&& f) {
    py::gil_scoped_release nogil;
    std::vector<const std::mutex*> seen;
    std::vector<std::unique_lock<std::mutex>> locks;
    std::vector<const patch_blocks*> plain;
    for (const blocks_g* g : blocks) {
        plain.push_back(g ? &g->obj : nullptr);
        if (!g) continue;
        bool taken = false;
        for (const std::mutex* m : seen) taken = taken || m == &g->mu;
        if (taken) continue;
        seen.push_back(&g->mu);
        locks.emplace_back(g->mu);
    }
    return f(plain);
}

}  // namespace

void bind_refinement(py::module_& m) {
    py::class_<refinement_g> cls(m, "DenoisingRefinement", R"doc(
The incremental refinement passes of a verified denoise (MATH.md §7, the CLI's --refine): what a
recalign.VerifiedDenoising holds between its passes. After each complete verification pass,
close() joins what the pass read to the carried statistics (complete_pass), then either ends the
passes (the result is that pass) or restarts on R, the sketch's U and every masking noise's Ritz
vectors (exact without reading), plus T, their corrections: the next pass reads only T
(fresh()). The adaptive stop: refinement_estimate of the last two changes of the exact stopping
curves (relative differences and normalised impacts, K <= 64) below REFINEMENT_STOP.)doc");
    cls.def(py::init([] { return std::make_unique<refinement_g>(refinement_state{}); }))
        .def("close",
             [](refinement_g& g, const spectrum& sketch, restricted_g& accumulator, const std::string& center,
                const std::vector<noise_spec>& noises,
                const std::vector<const blocks_g*>& blocks, std::size_t rank, const std::string& measure, bool restart,
                std::size_t count, gram_cache_g* factors) {
                 if (blocks.size() != noises.size())
                     throw std::invalid_argument("DenoisingRefinement.close: one blocks entry (or None) per noise");
                 refinement_options o;
                 o.rank = rank;
                 o.count = count;
                 o.alignment = align_options(measure, o.alignment.rel_tol);
                 const centering ce = parse_centering(center);
                 return with_all_blocks(blocks, [&](const std::vector<const patch_blocks*>& b) {
                     std::lock_guard<std::mutex> lock(g.mu), held(accumulator.mu);
                     std::unique_lock<std::mutex> cached;
                     if (factors) cached = std::unique_lock<std::mutex>(factors->mu);
                     refinement_state& s = g.obj;
                     restricted_moments& acc = accumulator.obj;
                     if (s.final_) throw std::invalid_argument("DenoisingRefinement.close: the passes have ended");
                     if (restart && (sketch.n != acc.n() || sketch.dim != acc.dim() || sketch.center != ce))
                         throw std::invalid_argument("DenoisingRefinement.close: the sketch and the pass are not of the same data");
                     if (s.next && (acc.dim() != s.next->dim() || acc.k() != s.next->k() - s.next->carried ||
                                    acc.n() != s.next->known.n))
                         throw std::invalid_argument("DenoisingRefinement.close: the pass did not read fresh() over the same rows");
                     check_close(s, acc, sketch, ce, noises, b, restart);  // before anything is built
                     // All or nothing, also when the disk or memory fails midway (a spill file that
                     // cannot be made, a failing read, bad_alloc): the next state is built beside this
                     // one and the accumulator, which change only once nothing can throw. The price is
                     // a copy of the accumulator's V and Sxx V (2 D x b doubles, b = the pass's new
                     // directions) while the step runs, and the carried [Sxx R, 0]'s file kept until
                     // the end (copies of a spilled pass share its files). The CLI moves both instead
                     // (verified_state::next_pass): a failure ends its run, which resumes from its
                     // last checkpoint.
                     restricted_statistics previous = s.next ? complete_pass(refinement_pass(*s.next), acc.finish(ce))
                                                             : acc.finish(ce);
                     refinement_state out;
                     out.passes = s.passes;
                     if (!restart) {  // the budget's last pass: its statistics are the result
                         previous.products();  // as the CLI's analyses do first (no-op when joined)
                         previous.load_sv();   // Python reads .sv: in memory, not on disk
                         out.curves = s.curves;
                         out.change = s.change;
                         out.estimate = s.estimate;
                         out.changes = s.changes;
                         out.estimates = s.estimates;
                         out.final_ = std::move(previous);
                     } else {
                         previous.products();  // Sxx Q on disk through the restart, as the CLI's
                         previous.spill_sv(io::spill_directory());
                         // The first restart solves with the factors its first basis recorded (the CLI's
                         // factors_cache): the bits of its own.
                         if (!s.next && factors) previous.gram_solves = factors->obj;
                         refinement_step step = denoising_restart(sketch, previous, noises, b, o,
                                                                  s.curves.size() ? &s.curves : nullptr, s.change);
                         out.change = step.change;
                         out.estimate = step.estimate;
                         out.changes = appended(s.changes, step.change);
                         out.estimates = appended(s.estimates, step.estimate);
                         out.curves = std::move(step.curves);
                         if (step.stopped) {
                             previous.load_sv();  // Python reads .sv: in memory, not on disk
                             out.final_ = std::move(previous);
                         } else if (step.next.k() == step.next.carried) {  // nothing new to read: R is complete
                             step.next.known.load_sv();  // Python reads .sv: in memory, not on disk
                             out.final_ = std::move(step.next.known);
                             out.final_->frame = std::make_shared<const matrix_t>(out.final_->gram);
                         } else {
                             // [R, T] and [Sxx R, 0] wait on disk while the pass reads T (io/spill.hpp): the
                             // all-or-nothing copy of the pass above then shares their files (the CLI, which
                             // moves it, keeps [R, T] in memory).
                             step.next.spill(io::spill_directory());
                             out.next = std::move(step.next);
                             ++out.passes;
                         }
                         out.stopped = !out.next;
                     }
                     // Nothing throws from here on: the new state replaces the old one (moves); the
                     // accumulator is left as it was (the caller drops it: its pass is complete).
                     s = std::move(out);
                     return s.next.has_value();
                 });
             },
             py::arg("sketch"), py::arg("accumulator"), py::arg("center"), py::arg("noises"), py::arg("blocks"), py::arg("rank"),
             py::arg("measure") = "paper", py::arg("restart") = true, py::arg("count") = denoising_refined_vectors,
             py::arg("factors") = py::none(),
             "After a complete verification pass (accumulator: its RestrictedMoments, finished in `center`, left as\n"
             "it was: drop it after; on the first pass's span Q, which starts with the sketch's U, or on\n"
             "fresh()): restart=False ends the passes\n"
             "with it (the budget's last); else denoising_restart with the previous curves. True when another pass\n"
             "is to read fresh(), False when the passes ended (stopped, or nothing new to read). blocks: each\n"
             "noise's PatchBlocks (None: Gaussian); rank: Ritz vectors kept per masking noise (the sketch's rank).\n"
             "All or nothing: a refused close (ValueError), or one the disk or memory fails midway (FileError on a\n"
             "spill file in $TMPDIR that cannot be made or read, MemoryError), leaves this state and the\n"
             "accumulator as they were: close() may be called again. factors: the GramSolveCache the first\n"
             "basis's sketched_denoising_subspace calls filled, for the first restart (later closes ignore it).")
        .def("fresh",
             [](const refinement_g& g) {
                 return to_numpy(locked(g, [](const refinement_state& s) {
                     if (!s.next) throw std::invalid_argument("DenoisingRefinement.fresh: no pass is being read");
                     return s.next->fresh();
                 }));
             },
             "T, the directions the current refinement pass reads (D x (m − carried)).")
        .def("verified",
             [](const refinement_g& g, std::optional<restricted_statistics> pass) {
                 return locked(g, [&](const refinement_state& s) {
                     if (s.final_) return *s.final_;
                     if (!pass) throw std::invalid_argument("DenoisingRefinement.verified: the pass's statistics are needed");
                     if (!s.next) return std::move(*pass);
                     restricted_statistics joined = complete_pass(refinement_pass(*s.next), std::move(*pass));
                     joined.load_sv();
                     return joined;
                 });
             },
             py::arg("statistics") = py::none(),
             "The statistics of the verified span: the result once the passes ended, else the pass's statistics\n"
             "joined to the carried ones (a copy: the state is unchanged).")
        .def("result",
             [](const refinement_g& g) {
                 return locked(g, [](const refinement_state& s) {
                     if (!s.final_) throw std::invalid_argument("DenoisingRefinement.result: the passes have not ended");
                     return &*s.final_;  // a pointer: locked() returns by value
                 });
             },
             py::return_value_policy::reference_internal,
             "The result once the passes ended, in place (no D x m copy; valid while this state lives and is\n"
             "not closed again): what report() analyses.")
        .def_property_readonly("ended", [](const refinement_g& g) { return locked(g, [](const refinement_state& s) { return s.final_.has_value(); }); },
                               "True once close() ended the passes (verified() needs no pass then).")
        .def_property_readonly("reading", [](const refinement_g& g) { return locked(g, [](const refinement_state& s) { return s.next.has_value(); }); },
                               "True while a refinement pass reads fresh().")
        .def_property_readonly("stopped", [](const refinement_g& g) { return locked(g, [](const refinement_state& s) { return s.stopped; }); },
                               "True when the adaptive stop (or nothing new to read) ended the passes before the budget.")
        .def_property_readonly("passes", [](const refinement_g& g) { return locked(g, [](const refinement_state& s) { return s.passes; }); },
                               "Refinement passes started after the first verification pass.")
        .def_property_readonly("change", [](const refinement_g& g) { return locked(g, [](const refinement_state& s) { return s.change; }); },
                               "The last restart's refinement_change (NaN before any, inf without a previous one).")
        .def_property_readonly("estimate", [](const refinement_g& g) { return locked(g, [](const refinement_state& s) { return s.estimate; }); },
                               "The last restart's refinement_estimate: an ESTIMATE of how far the stopping curves still are\n"
                               "from the passes' limit (NaN before any restart, inf while it cannot be judged).")
        .def_property_readonly("changes", [](const refinement_g& g) { return to_numpy(locked(g, [](const refinement_state& s) { return s.changes; })); },
                               "Every restart's refinement_change, in turn (the last is `change`; NaN: a restart before a resume\n"
                               "from older bytes).")
        .def_property_readonly("estimates", [](const refinement_g& g) { return to_numpy(locked(g, [](const refinement_state& s) { return s.estimates; })); },
                               "Every restart's refinement_estimate, in turn (the last is `estimate`).")
        .def_property_readonly("curves", [](const refinement_g& g) { return to_numpy(locked(g, [](const refinement_state& s) { return s.curves; })); },
                               "The last restart's stopping curves.")
        .def("to_bytes", [](const refinement_g& g) { return py::bytes(locked(g, [](const refinement_state& s) { return to_bytes(s); })); },
             "The state as bytes (the carried statistics and the result, bit for bit).")
        .def_static("from_bytes",
                    [](py::handle b, const std::string& source) {
                        std::string bytes(bytes_like(b));
                        py::gil_scoped_release nogil;
                        return std::make_unique<refinement_g>(from_bytes(bytes, source));
                    },
                    py::arg("data"), py::arg("source") = "<bytes>", "The state from to_bytes(); bad bytes raise FileError.")
        .def("copy", [](const refinement_g& g) { return locked(g, [](const refinement_state& s) { return std::make_unique<refinement_g>(refinement_state(s)); }); },
             "An independent copy.");
    m.attr("REFINEMENT_STOP") = refinement_stop;
    m.attr("REFINEMENT_IMPACT_WEIGHT") = refinement_impact_weight;
    m.attr("DENOISING_REFINED_VECTORS") = denoising_refined_vectors;
    m.def("refinement_change",
          [](py::handle before, py::handle after) { return refinement_change(to_vector(before, "before"), to_vector(after, "after")); },
          py::arg("before"), py::arg("after"),
          "The largest absolute change between two passes' stopping curves (inf when their lengths differ or\n"
          "either is empty), unweighted: the stop weighs the impacts' changes by REFINEMENT_IMPACT_WEIGHT.");
    m.def("refinement_estimate", &refinement_estimate, py::arg("previous_change"), py::arg("change"),
          "An ESTIMATE of how far the stopping curves still are from the passes' limit, from the last two changes\n"
          "(c rho / (1 - rho), rho = change / previous_change, at least change; inf while it cannot be judged); the\n"
          "passes stop below REFINEMENT_STOP. The method's own error (where the passes settle) is not in it.");
}

}  // namespace recalign::python
