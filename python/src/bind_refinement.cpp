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
#include "refinement_bytes.hpp"

namespace recalign::python {

namespace {

using blocks_g = guarded<patch_blocks>;
using restricted_g = guarded<restricted_moments>;

using refinement_g = guarded<refinement_state>;

// v with x after its last element.
vector_t appended(const vector_t& v, double x) {
    vector_t out = xt::zeros<double>({v.size() + 1});
    std::copy(v.begin(), v.end(), out.begin());
    out(v.size()) = x;
    return out;
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
                std::size_t count, gram_cache_g* factors, bool consume) {
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
                     // last checkpoint. With `consume`, the accumulator's V and Sxx V are moved in instead of
                     // copied, as the CLI's, and the caller restores the accumulator if this throws.
                     restricted_statistics finished = consume ? std::move(acc).finish(ce) : acc.finish(ce);
                     restricted_statistics previous =
                         s.next ? complete_pass(refinement_pass(*s.next), std::move(finished)) : std::move(finished);
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
             py::arg("factors") = py::none(), py::arg("consume") = false,
             "After a complete verification pass (accumulator: its RestrictedMoments, finished in `center`, left as\n"
             "it was: drop it after; on the first pass's span Q, which starts with the sketch's U, or on\n"
             "fresh()): restart=False ends the passes\n"
             "with it (the budget's last); else denoising_restart with the previous curves. True when another pass\n"
             "is to read fresh(), False when the passes ended (stopped, or nothing new to read). blocks: each\n"
             "noise's PatchBlocks (None: Gaussian); rank: Ritz vectors kept per masking noise (the sketch's rank).\n"
             "All or nothing: a refused close (ValueError), or one the disk or memory fails midway (FileError on a\n"
             "spill file in $TMPDIR that cannot be made or read, MemoryError), leaves this state and the\n"
             "accumulator as they were: close() may be called again. factors: the GramSolveCache the first\n"
             "basis's sketched_denoising_subspace calls filled, for the first restart (later closes ignore it).\n"
             "consume=True: the accumulator's V and Sxx V move into the step instead of being copied (2 D x b\n"
             "doubles less beside the restart, b = the pass's columns); the accumulator is then spent, also when\n"
             "close() fails past its checks: the caller restores it (VerifiedDenoising reads it back from $TMPDIR).")
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
        .def("to_bytes", [](const refinement_g& g) { return py::bytes(locked(g, [](const refinement_state& s) { return refinement_bytes(s); })); },
             "The state as bytes (the carried statistics and the result, bit for bit).")
        .def("_write_to",
             [](const refinement_g& g, const py::object& write) {
                 locked(g, [&](const refinement_state& s) {
                     write_to_python(write, [&s](const byte_sink& sink) { write_refinement(s, sink); });
                 });
             },
             py::arg("write"),
             "to_bytes()'s bytes handed to write(memoryview) in pieces, a pass being read's matrices copied from\n"
             "their spill files by blocks (checkpoints in parts: never whole in memory).")
        .def_property_readonly("_framed_size",
                               [](const refinement_g& g) {
                                   return locked(g, [](const refinement_state& s) { return write_refinement(s, byte_sink()); });
                               },
                               "len(to_bytes()), without the bytes.")
        .def_static("from_bytes",
                    [](py::handle b, const std::string& source, std::uint64_t at) {
                        const held_bytes held = readonly_bytes(b);  // no copy: it (immutable) outlives the call
                        py::gil_scoped_release nogil;
                        return std::make_unique<refinement_g>(read_refinement({held.view, -1, at, held.view.size(), source}));
                    },
                    py::arg("data"), py::arg("source") = "<bytes>", py::arg("at") = 0,
                    "The state from to_bytes(); bad bytes raise FileError naming source at at + their offset in data.")
        .def_static("_load_range",
                    [](int fd, std::uint64_t offset, std::uint64_t size, const std::string& source) {
                        py::gil_scoped_release nogil;
                        return std::make_unique<refinement_g>(read_refinement({{}, fd, offset, size, source}));
                    },
                    py::arg("fd"), py::arg("offset"), py::arg("size"), py::arg("source"),
                    "from_bytes() of bytes [offset, offset + size) of the open file fd, read where they lie (a pass\n"
                    "being read's matrices straight into spill files); errors name source and the file offset.")
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
