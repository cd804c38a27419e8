// Monte-Carlo noises on a sketch route (MATH.md §7 "Other noises"): the monte_carlo_sketch
// accumulator (G Ω, Bs Ω, Bsᵀ Ω of the corrupted samples; on the verification basis Ωᵀ G Ω and
// Bsᵀ Ω), its Ritz space and Theorem 3 solved on the verified span, as `recalign denoise
// --method fd|nystrom` runs them (tools/recalign/monte_carlo_state.cpp).
#include <optional>
#include <string>
#include <tuple>

#include "common.hpp"
#include "corrupted_state.hpp"
#include "recalign/align/monte_carlo_sketch.hpp"
#include "recalign/align/verification.hpp"

namespace recalign::python {

namespace {

using mcs_g = corrupted_g<monte_carlo_sketch>;
using mcs_state = corrupted<monte_carlo_sketch>;

constexpr const char* corruption_doc =
    "The corruption is code, not state: give the same spec (and image shape) or corrupt function again.\n"
    "Without either, the state can merge and give its products, and update() raises.";

}  // namespace

void bind_monte_carlo_sketch(py::module_& m) {
    py::class_<monte_carlo_products>(m, "MonteCarloProducts", R"doc(
MonteCarloSketch.products(): the Monte-Carlo noise's expectations times the test matrix Ω, averaged
over the draws and summed over the samples (uncentered): G Ω, Bs Ω, Bsᵀ Ω (D x l) and Ωᵀ G Ω (l x l).
Without ranges (a verification pass, Ω = Q) only Bsᵀ Ω and Ωᵀ G Ω.)doc")
        .def_readonly("n", &monte_carlo_products::n, "Samples summed over.")
        .def_property_readonly("test", [](const monte_carlo_products& p) { return to_numpy(p.test); }, "Ω (D x l).")
        .def_property_readonly("g", [](const monte_carlo_products& p) { return to_numpy(p.g); }, "G Ω (D x l; 0 x 0 without ranges).")
        .def_property_readonly("bs", [](const monte_carlo_products& p) { return to_numpy(p.bs); }, "Bs Ω (D x l; 0 x 0 without ranges).")
        .def_property_readonly("bs_t", [](const monte_carlo_products& p) { return to_numpy(p.bs_t); }, "Bsᵀ Ω (D x l).")
        .def_property_readonly("gq", [](const monte_carlo_products& p) { return to_numpy(p.gq); }, "Ωᵀ G Ω (l x l, symmetric).");

    py::class_<monte_carlo_batch>(m, "MonteCarloBatch",
                                  "A batch read and corrupted by MonteCarloSketch.prepare(), waiting for its commit().")
        .def_property_readonly("rows", &monte_carlo_batch::rows, "Rows of the batch.")
        .def_readonly("first_row", &monte_carlo_batch::first_row, "Its first row (the corruptions' key).")
        .def_readonly("batch", &monte_carlo_batch::batch, "The sketch's batch count it was prepared at.");
    py::class_<mcs_g> cls(m, "MonteCarloSketch", R"doc(
A Monte-Carlo noise at any resolution (MATH.md §7 "Other noises"): instead of the D x D expectations
Bs = (1/S) Σ x'_s xᵀ and G = (1/S) Σ x'_s x'_sᵀ of MonteCarloNoise, their products with a D x l test
matrix Ω, from the very corruptions MonteCarloNoise draws (key (seed, batch, draw, first_row)): in the
sketch pass (Ω = gaussian_test_matrix, ranges=True) G Ω, Bs Ω, Bsᵀ Ω, whose span with the clean sketch's
basis is the Ritz space (monte_carlo_ritz_basis); in the verification pass (Ω = that orthonormal basis
Q, ranges=False) Qᵀ G Q and Bsᵀ Q, from which ritz_monte_carlo_denoising solves Theorem 3 on span Q
exactly for the draws made. Linear in the data: merge is a sum. Same verbs as MonteCarloNoise
(update, merge, to_bytes/from_bytes, save/load, pickle; the corruption is given again on load).

    mcs = MonteCarloSketch(gaussian_test_matrix(d, 60, 7), "mask:patch=4x4,ratio=0.75,draws=4,seed=7", shape=(28, 28))
    mcs.update(x); q = monte_carlo_ritz_basis(u, mcs.products()))doc");
    cls.def(py::init([](py::handle test, py::object spec, py::object corrupt, std::optional<std::int64_t> draws,
                        std::optional<std::uint64_t> seed,
                        std::string name, py::object shape, const std::string& layout, bool ranges) {
                const image_shape sh = make_shape(shape, layout);
                monte_carlo_sketch_options o;
                o.test = to_matrix(test, "test");
                o.ranges = ranges;
                std::optional<noise_spec> s = optional_spec(spec);
                corrupted_model model = model_of(s, corrupt, draws, seed, name, "MonteCarloSketch");
                o.draws = model.draws;
                o.seed = model.seed;
                o.name = std::move(model.name);
                return make_corrupted(monte_carlo_sketch(std::move(o), {}), s, sh, corrupt, "MonteCarloSketch");
            }),
            py::arg("test"), py::arg("spec") = py::none(), py::kw_only(), py::arg("corrupt") = py::none(),
            py::arg("draws") = py::none(), py::arg("seed") = py::none(), py::arg("name") = "", py::arg("shape") = py::none(),
            py::arg("layout") = "hwc", py::arg("ranges") = true,
            "test: Ω (D x l, finite; part of the configuration, compared bit for bit on merge). Either a built-in\n"
            "spec with draws, or corrupt(clean, key) -> corrupted with draws, seed and a name, as MonteCarloNoise\n"
            "takes them. shape/layout: the image geometry of masks whose spec has none. ranges: also G Ω and\n"
            "Bs Ω (the sketch pass); False keeps Ωᵀ G Ω and Bsᵀ Ω only (the verification pass).")
        .def("prepare",
             [](const mcs_g& g, py::handle x, std::optional<std::int64_t> given) {
                 const std::optional<std::uint64_t> first_row = row_arg(given);
                 const std::uint64_t first =
                     first_row ? *first_row : locked(g, [](const mcs_state& s) { return s.acc.n(); });
                 held_batch b = as_batch(x, "batch", first);
                 return locked(g, [&](const mcs_state& s) { return s.acc.prepare(b.view, first); });
             },
             py::arg("x"), py::arg("first_row") = py::none(),
             "update() in two steps: read, check and corrupt the batch `draws` times, changing nothing; the\n"
             "MonteCarloBatch returned is added by commit(). For a caller that must refuse a batch before any of\n"
             "its parts changes (the verified routes), without a copy of the state.")
        .def("commit",
             [](mcs_g& g, const monte_carlo_batch& b) { locked_mut(g, [&](mcs_state& s) { s.acc.commit(b); }); },
             py::arg("batch"),
             "Add a batch prepared by this sketch at its current batch count, in place (cannot fail otherwise:\n"
             "RuntimeError, before any change, for a batch prepared elsewhere or earlier).")
        .def("products", [](const mcs_g& g) { return locked(g, [](const mcs_state& s) { return s.acc.products(); }); },
             "The MonteCarloProducts (averaged over the draws, summed over the samples).")
        .def_property_readonly("draws", [](const mcs_g& g) { return locked(g, [](const mcs_state& s) { return s.acc.options().draws; }); }, "S, corruptions per sample.")
        .def_property_readonly("seed", [](const mcs_g& g) { return locked(g, [](const mcs_state& s) { return s.acc.options().seed; }); }, "The corruptions' seed.")
        .def_property_readonly("ranges", [](const mcs_g& g) { return locked(g, [](const mcs_state& s) { return s.acc.options().ranges; }); }, "True: G Ω and Bs Ω are kept too.")
        .def_property_readonly("columns", [](const mcs_g& g) { return locked(g, [](const mcs_state& s) { return s.acc.columns(); }); }, "l, the columns of Ω.")
        .def("__len__", [](const mcs_g& g) { return locked(g, [](const mcs_state& s) { return std::size_t(s.acc.n()); }); })
        .def("__repr__", [](const mcs_g& g) {
            return locked(g, [](const mcs_state& s) {
                return "MonteCarloSketch(name='" + s.acc.options().name + "', dim=" + std::to_string(s.acc.dim()) +
                       ", columns=" + std::to_string(s.acc.columns()) + ", draws=" + std::to_string(s.acc.options().draws) +
                       ", n=" + std::to_string(s.acc.n()) + ")";
            });
        });
    bind_corrupted_verbs<monte_carlo_sketch>(
        cls, "MonteCarloSketch",
        {"Corrupt the batch `draws` times (keys: seed, batch, draw, first_row; default first_row: n) and\n"
         "accumulate; releases the GIL; a bad batch or a failing corruption changes nothing.",
         "Add a sketch of the same Ω (bit for bit), draws, seed and name over other rows; ValueError before any change.",
         "Without either, the state can merge and give its products, and update() raises."});

    m.def("gaussian_test_matrix",
          [](std::size_t dim, std::size_t columns, std::uint64_t seed) {
              matrix_t t;
              {
                  py::gil_scoped_release nogil;
                  t = gaussian_test_matrix(dim, columns, seed);
              }
              return to_numpy(t);
          },
          py::arg("dim"), py::arg("columns"), py::arg("seed"),
          "A D x l matrix of standard normal entries, a pure function of (seed, D, l) (counter-based; never the\n"
          "numbers of the corruptions of that seed): the Ω of a Monte-Carlo noise's sketch, as the CLI draws it.");
    m.def("monte_carlo_ritz_basis",
          [](py::handle q, const monte_carlo_products& p) {
              const matrix_t a = to_matrix(q, "q");
              matrix_t out;
              {
                  py::gil_scoped_release nogil;
                  out = monte_carlo_ritz_basis(a, p);
              }
              return to_numpy(out);
          },
          py::arg("q"), py::arg("products"),
          "An orthonormal basis of span(q, G Ω, Bs Ω, Bsᵀ Ω) (q orthonormal: the clean sketch's basis, or that\n"
          "extended by other noises' subspaces; products of a sketch with ranges), dependent columns left out.");
    m.def("ritz_monte_carlo_denoising",
          [](const restricted_statistics& pass, const monte_carlo_products& on_basis, double rel_tol) {
              py::gil_scoped_release nogil;
              return ritz_monte_carlo_denoising(pass, on_basis, rel_tol);
          },
          py::arg("statistics"), py::arg("products"), py::arg("rel_tol") = 1e-12,
          "Theorem 3 restricted to span Q, exactly for the draws made: `statistics` the verification pass on Q\n"
          "(uncentered), `products` a MonteCarloSketch with Ω = Q over the same rows. ValueError when Ω is not the\n"
          "pass's basis, the sample counts differ or the pass is centered.");
    m.def("verified_ritz_denoising",
          [](const ritz_alignment_result& clean, const ritz_denoising_result& found, const std::string& measure,
             double rel_tol) {
              const alignment_options o = align_options(measure, rel_tol);
              py::gil_scoped_release nogil;
              return verified_denoising(clean, found, o);
          },
          py::arg("clean"), py::arg("found"), py::arg("measure") = "paper", py::arg("rel_tol") = 1e-12,
          "verified_denoising for a subspace already found on the pass's span (a RitzDenoising, e.g. of\n"
          "ritz_monte_carlo_denoising): the curves and impact exact for it, against `clean` (ritz_alignment).");
}

}  // namespace recalign::python
