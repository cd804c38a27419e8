// Frequent Directions and Nyström sketches (O(D · rank) memory top subspaces).
#include <string>

#include "common.hpp"
#include "recalign/sketch/frequent_directions.hpp"
#include "recalign/sketch/frequent_directions_ell.hpp"
#include "recalign/sketch/nystrom_sketch.hpp"
#include "recalign/spectral/statistics.hpp"
#include "recalign/stats/class_moments.hpp"

namespace recalign::python {

namespace {
template <class T>
void update_sketch(guarded<T>& g, py::handle x, std::int64_t given) {
    const std::uint64_t first_row = row_arg(given);
    held_batch b = as_batch(x, "batch", first_row);
    locked_mut(g, [&](T& s) { s.update(b.view, first_row); });
}

// Finished statistics of a sketch, with the label statistics of the same rows when given.
// The labels are copied under their own lock first: two locks are never held at once.
template <class T>
statistics finish_sketch(const guarded<T>& g, const guarded<class_moments>* labels, std::size_t rank) {
    sketch_finish_options o;
    o.rank = rank;
    if (!labels) return locked(g, [&](const T& s) { return finish(s, nullptr, o); });
    const class_moments cm = locked(*labels, [](const class_moments& c) { return c; });
    return locked(g, [&](const T& s) { return finish(s, &cm, o); });
}

constexpr const char* finish_doc =
    "Finished statistics (recalign.Statistics): the sketch's top `rank` eigenpairs (0: its own k) in the\n"
    "centering it was built with, its error information, its mean, and Sxy/Syy from `labels` (a\n"
    "ClassMoments fed the same rows) when given. The alignment curve then runs up to the sketch's rank;\n"
    "the trade-off and denoising need the exact route.";
}  // namespace

void bind_sketch(py::module_& m) {
    m.def("frequent_directions_default_ell", &frequent_directions_default_ell, py::arg("rank"), py::arg("dim"),
          "The CLI's FD sketch size for rank k at D = dim: ell = k + k/eps with eps = 1/2, i.e. min(3k, D)\n"
          "(the top-k basis misses at most eps times the best rank-k residual beyond it).");
    m.def("frequent_directions_legacy_ell", &frequent_directions_legacy_ell, py::arg("rank"), py::arg("dim"),
          "min(2k, D): the CLI's FD sketch size before frequent_directions_default_ell; states begun with it resume with it.");
    using fd_g = guarded<frequent_directions>;
    py::class_<fd_g> fd(m, "FrequentDirections", R"doc(
Frequent Directions sketch of the (centered or uncentered) second moment: an ell x D matrix B
with 0 <= C − BᵀB and ‖C − BᵀB‖₂ <= shrinkage <= tail / (ell + 1 − k). Memory: 2·ell x D.
Same verbs as MomentAccumulator: update, merge, to_bytes/from_bytes, save/load, pickle.)doc");
    fd.def(py::init([](std::int64_t dim, std::int64_t ell, const std::string& center, bool float32_kernels) {
               frequent_directions_options o;
               o.dim = size_arg(dim, "dim");
               o.ell = size_arg(ell, "ell");
               o.center = parse_centering(center);
               o.float32_kernels = float32_kernels;
               return std::make_unique<fd_g>(frequent_directions(o));
           }),
           py::arg("dim"), py::arg("ell"), py::arg("center") = "centered", py::arg("float32_kernels") = false,
           "dim: D. ell: rows of the sketch (memory 2 · ell · D doubles; the error bound falls as 1/(ell + 1 − k)).\ncenter: 'centered' (PCA) or 'uncentered'.\n"
           "float32_kernels: opt-in single-precision shrinks (about 2x faster; the bound then holds up to about 1e-7 of λ₁ per "
           "shrink; not saved: a loaded sketch shrinks in double).")
        .def("update", &update_sketch<frequent_directions>, py::arg("x"), py::arg("first_row") = 0,
             "Add a batch; releases the GIL; a rejected batch changes nothing.")
        .def("merge", &merge_guarded<frequent_directions>, py::arg("other"), "Merge a sketch of the same dim, ell and centering over other rows (the bounds add); strong guarantee.")
        .def_property_readonly("ell", [](const fd_g& g) { return locked(g, [](const frequent_directions& s) { return s.options().ell; }); }, "Rows of the sketch.")
        .def_property_readonly("shrinkage", [](const fd_g& g) { return locked(g, [](const frequent_directions& s) { return s.shrinkage(); }); },
                               "Δ: ‖C − BᵀB‖₂ <= Δ.")
        .def_property_readonly("shrinks", [](const fd_g& g) { return locked(g, [](const frequent_directions& s) { return s.shrinks(); }); }, "How many shrink steps have run.")
        .def_property_readonly("rows", [](const fd_g& g) { return locked(g, [](const frequent_directions& s) { return s.rows(); }); }, "Rows of the sketch in use now (<= 2 ell).")
        .def("mean", [](const fd_g& g) { return to_numpy(locked(g, [](const frequent_directions& s) { return vector_t(s.mean()); })); }, "Mean of the rows (D,), exact.")
        .def("trace", [](const fd_g& g) { return locked(g, [](const frequent_directions& s) { return s.trace(); }); }, "Trace of the second moment in the sketch's centering, exact (no sketching error).")
        .def("sketch", [](const fd_g& g) { return to_numpy(locked(g, [](const frequent_directions& s) { return s.sketch(); })); },
             "B (rows x D) of the centered scatter: BᵀB ≈ M.")
        .def("spectrum", [](const fd_g& g, std::size_t rank, double rel_tol) {
                 frequent_directions_spectrum_options o;
                 o.rank = rank;
                 o.rel_tol = rel_tol;
                 return locked(g, [&](const frequent_directions& s) { return frequent_directions_spectrum(s, o); });
             },
             py::arg("rank") = 0, py::arg("rel_tol") = 1e-12, "Top eigenpairs (error_bound = shrinkage).")
        .def("finish", &finish_sketch<frequent_directions>, py::arg("labels") = py::none(), py::arg("rank") = 0,
             finish_doc)
        .def("__repr__", [](const fd_g& g) {
            return locked(g, [](const frequent_directions& s) {
                return "FrequentDirections(dim=" + std::to_string(s.dim()) + ", ell=" + std::to_string(s.options().ell) +
                       ", center='" + centering_name(s.options().center) + "', n=" + std::to_string(s.n()) + ")";
            });
        });
    add_state_methods<frequent_directions>(fd, "FrequentDirections");

    using ny_g = guarded<nystrom_sketch>;
    py::class_<ny_g> ny(m, "NystromSketch", R"doc(
Randomized range / Nyström sketch of the second moment (single- or multi-pass): Y = C [Ω | G]
with a counter-based random Ω of width rank + oversampling (±1 signs by default, or
test="gaussian"; regenerated from `seed`, never stored) and `probes` extra columns for an a-posteriori error estimate. next_pass()
starts a power iteration over another read of the data (blocks > 1: block Krylov, keeping up to
`blocks` passes' blocks and their products). Same verbs as MomentAccumulator.)doc");
    ny.def(py::init([](std::int64_t dim, std::int64_t rank, std::int64_t oversampling, std::int64_t probes, std::uint64_t seed,
                       const std::string& center, bool float32_kernels, const std::string& test, std::int64_t blocks) {
               nystrom_options o;
               o.dim = size_arg(dim, "dim");
               o.rank = size_arg(rank, "rank");
               o.oversampling = size_arg(oversampling, "oversampling");
               o.probes = size_arg(probes, "probes");
               o.seed = seed;
               o.center = parse_centering(center);
               o.float32_kernels = float32_kernels;
               o.blocks = size_arg(blocks, "blocks");
               if (test != "auto" && test != "signs" && test != "gaussian" && test != "sparse")
                   throw std::invalid_argument("test must be 'auto', 'signs', 'sparse' or 'gaussian', not '" + test + "'");
               o.test = test == "signs"      ? nystrom_test::signs
                        : test == "gaussian" ? nystrom_test::gaussian
                        : test == "sparse"   ? nystrom_test::sparse_signs
                                             : nystrom_test::automatic;
               return std::make_unique<ny_g>(nystrom_sketch(o));
           }),
           py::arg("dim"), py::arg("rank"), py::arg("oversampling") = 10, py::arg("probes") = 10, py::arg("seed") = 0,
           py::arg("center") = "centered", py::arg("float32_kernels") = false, py::arg("test") = "auto", py::arg("blocks") = 1,
           "blocks: 1 = subspace iteration between passes; B > 1 = block Krylov over up to B passes (every pass's block "
           "and its product kept: more accurate per pass, 2 D x (rank + oversampling) more memory per kept pass). "
           "float32_kernels: opt-in SGEMM products for float32 or uint8 input (about 2x faster; merges with sketches "
           "without it). test: the random test matrix, 'auto' (±1 signs where D >= 64, else Gaussian: a small ±1 matrix is often singular), 'signs', 'gaussian' or 'sparse' "
           "(8 entries ±1 a row, the probes dense signs: the first pass's X Ω without a GEMM, about 1.2-1.5x faster updates at D = 150,528; "
           "needs D x 8 >= 32 (rank + oversampling)).")
        .def("update", &update_sketch<nystrom_sketch>, py::arg("x"), py::arg("first_row") = 0,
             "Add a batch to the current pass; releases the GIL; a rejected batch changes nothing.")
        .def("merge", &merge_guarded<nystrom_sketch>, py::arg("other"), "Merge a sketch of the same configuration and pass over other rows; strong guarantee.")
        .def("next_pass", [](ny_g& g) { locked_mut(g, [](nystrom_sketch& s) { s.next_pass(); }); },
             "End the current pass and start a power iteration (read the data again).")
        .def("relative_error", [](const ny_g& g, std::size_t rank) {
                 return locked(g, [&](const nystrom_sketch& s) {
                     nystrom_spectrum_options o;
                     o.rank = rank;
                     return nystrom_relative_error(s, o);
                 });
             }, py::arg("rank") = 0,
             "The probes' estimate of ‖C − Ĉ_r‖_F / tr(C) for the current pass (r = rank, 0: the sketch's); the "
             "stopping rule of a tolerance: run another pass while it exceeds T. It includes the tail beyond rank r.")
        .def_property_readonly("pass_index", [](const ny_g& g) { return locked(g, [](const nystrom_sketch& s) { return s.pass(); }); }, "The current pass (0 = the first read of the data).")
        .def_property_readonly("rank", [](const ny_g& g) { return locked(g, [](const nystrom_sketch& s) { return s.options().rank; }); }, "Target rank k.")
        .def_property_readonly("width", [](const ny_g& g) { return locked(g, [](const nystrom_sketch& s) { return s.width(); }); }, "Columns of the range sketch: rank + oversampling + probes.")
        .def("mean", [](const ny_g& g) { return to_numpy(locked(g, [](const nystrom_sketch& s) { return vector_t(s.mean()); })); }, "Mean of the rows (D,) over the current pass, exact.")
        .def("trace", [](const ny_g& g) { return locked(g, [](const nystrom_sketch& s) { return s.trace(); }); }, "Trace of the second moment in the sketch's centering over the current pass, exact.")
        .def("range", [](const ny_g& g) { return to_numpy(locked(g, [](const nystrom_sketch& s) { return s.range(); })); },
             "C [Ω or Q | G] for the chosen centering.")
        .def("test_matrix", [](const ny_g& g) { return to_numpy(locked(g, [](const nystrom_sketch& s) { return s.test_matrix(); })); },
             "The current test matrix [Ω or Q | G] (D x width), formed on request (it is regenerated, never kept): "
             "range() is C times it.")
        .def_property_readonly("test", [](const ny_g& g) {
                 return locked(g, [](const nystrom_sketch& s) {
                     const nystrom_test t = s.options().test;
                     return std::string(t == nystrom_test::signs ? "signs" : t == nystrom_test::sparse_signs ? "sparse" : "gaussian");
                 });
             }, "The test matrix of the first pass: 'signs', 'sparse' or 'gaussian' ('auto' resolved).")
        .def("spectrum", [](const ny_g& g, std::size_t rank) {
                 nystrom_spectrum_options o;
                 o.rank = rank;
                 return locked(g, [&](const nystrom_sketch& s) { return nystrom_spectrum(s, o); });
             },
             py::arg("rank") = 0, "Stable PSD Nyström reconstruction's eigenpairs (error_estimate from the probes).")
        .def("finish", &finish_sketch<nystrom_sketch>, py::arg("labels") = py::none(), py::arg("rank") = 0, finish_doc)
        .def("__repr__", [](const ny_g& g) {
            return locked(g, [](const nystrom_sketch& s) {
                return "NystromSketch(dim=" + std::to_string(s.dim()) + ", rank=" + std::to_string(s.options().rank) +
                       ", pass=" + std::to_string(s.pass()) + ", n=" + std::to_string(s.n()) + ")";
            });
        });
    add_state_methods<nystrom_sketch>(ny, "NystromSketch");
}

}  // namespace recalign::python
