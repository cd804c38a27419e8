// The high-D pieces of MATH.md §7 (issue 14): the exact patch blocks, the verification pass's
// restricted moments and the analyses that read them (numbers exact for the subspace returned).
#include <optional>
#include <string>
#include <vector>

#include "common.hpp"
#include "recalign/align/patch_blocks.hpp"
#include "recalign/align/restricted_moments.hpp"
#include "recalign/align/sketch_denoising.hpp"
#include "recalign/align/verification.hpp"
#include "recalign/align/verified_memory.hpp"
#include "recalign/io/spill.hpp"

namespace recalign::python {

namespace {

using blocks_g = guarded<patch_blocks>;
using restricted_g = guarded<restricted_moments>;

// The diagonal of Sxx, exact: the diagonals of the blocks (every coordinate lies in one).
vector_t blocks_diagonal(const patch_blocks& p, centering c) {
    vector_t d = xt::zeros<double>({p.dim()});
    for (std::size_t b = 0; b < p.blocks(); ++b) {
        const matrix_t m = p.block(b, c);
        const std::vector<std::size_t>& idx = p.indices(b);
        for (std::size_t i = 0; i < idx.size(); ++i) d(idx[i]) = m(i, i);
    }
    return d;
}

void bind_patch_blocks(py::module_& m) {
    py::class_<blocks_g> cls(m, "PatchBlocks", R"doc(
The exact per-patch diagonal blocks of the second moment (MATH.md §7): Bd = blockdiag_b(Sxx[I_b, I_b])
with I_b every pixel and channel of patch b (edge patches may be smaller). With them patch masking
(and dropout: 1x1 patches) is exact at any resolution: G = c1 Sxx + c2 Bd, Bs = q Sxx, so only Sxx
needs a sketch. Memory D·s doubles (s = patch pixels x channels). Same verbs as MomentAccumulator:
update, merge, to_bytes/from_bytes, save/load, pickle; a rejected batch changes nothing.

    pb = PatchBlocks((32, 32, 3), patch=(4, 4))
    pb.update(x)                                  # rows of H*W*C values
    pb.block(0, "uncentered"); pb.restrict_to(v)  # V^T Bd V)doc");
    cls.def(py::init([](py::object shape, std::pair<std::int64_t, std::int64_t> patch, const std::string& layout) {
                patch_blocks_options o;
                o.shape = make_shape(shape, layout);
                o.patch_h = size_arg(patch.first, "patch height");
                o.patch_w = size_arg(patch.second, "patch width");
                return std::make_unique<blocks_g>(patch_blocks(o));
            }),
            py::arg("shape"), py::arg("patch") = std::make_pair<std::int64_t, std::int64_t>(1, 1), py::arg("layout") = "hwc",
            "shape: the image (H, W[, C]); patch: (height, width) in pixels (1x1: dropout); layout: 'hwc' or 'chw',\n"
            "the order of a flat row's values.")
        .def("update",
             [](blocks_g& g, py::handle x, std::int64_t given) {
                 const std::uint64_t first_row = row_arg(given);
                 held_batch b = as_batch(x, "batch", first_row);
                 locked_mut(g, [&](patch_blocks& p) { p.update(b.view, first_row); });
             },
             py::arg("x"), py::arg("first_row") = 0,
             "Add a batch (rows = samples); releases the GIL; a rejected batch (width, NaN/Inf) changes nothing.")
        .def("merge", &merge_guarded<patch_blocks>, py::arg("other"),
             "Chan's rule per block; another geometry or patch size raises ValueError before any change.")
        .def_property_readonly("blocks", [](const blocks_g& g) { return locked(g, [](const patch_blocks& p) { return p.blocks(); }); }, "Number of patch blocks.")
        .def_property_readonly("values", [](const blocks_g& g) { return locked(g, [](const patch_blocks& p) { return p.values(); }); }, "Doubles the blocks hold (packed upper triangles): Σ_b |I_b|(|I_b| + 1)/2.")
        .def_property_readonly("shape", [](const blocks_g& g) { return shape_tuple(locked(g, [](const patch_blocks& p) { return p.options().shape; })); }, "The image shape (H, W, C).")
        .def_property_readonly("layout", [](const blocks_g& g) { return locked(g, [](const patch_blocks& p) { return std::string(image_layout_name(p.options().shape.layout)); }); }, "'hwc' or 'chw'.")
        .def_property_readonly("patch", [](const blocks_g& g) { return locked(g, [](const patch_blocks& p) { return std::make_pair(p.options().patch_h, p.options().patch_w); }); }, "(height, width) of a patch.")
        .def("indices", [](const blocks_g& g, std::size_t b) {
                 const std::vector<std::size_t> v = locked(g, [&](const patch_blocks& p) { return p.indices(b); });
                 return py::array_t<std::uint64_t>(static_cast<py::ssize_t>(v.size()), reinterpret_cast<const std::uint64_t*>(v.data()));
             },
             py::arg("b"), "Flat coordinates of block b, ascending (uint64 array).")
        .def("block", [](const blocks_g& g, std::size_t b, const std::string& c) {
                 const centering ce = parse_centering(c);
                 return to_numpy(locked(g, [&](const patch_blocks& p) { return p.block(b, ce); }));
             },
             py::arg("b"), py::arg("center") = "uncentered", "Sxx[I_b, I_b] (|I_b| x |I_b|, symmetric) in this centering.")
        .def("diagonal", [](const blocks_g& g, const std::string& c) {
                 const centering ce = parse_centering(c);
                 return to_numpy(locked(g, [&](const patch_blocks& p) { return blocks_diagonal(p, ce); }));
             },
             py::arg("center") = "uncentered", "The diagonal of Sxx (D,), exact: what verified tradeoff preconditions with.")
        .def("mean", [](const blocks_g& g) { return to_numpy(locked(g, [](const patch_blocks& p) { return p.mean(); })); }, "Mean of the rows (D,).")
        .def("coefficients", [](const blocks_g& g, py::handle noise) {
                 const noise_spec s = spec_of(noise);
                 const keep_probabilities k = locked(g, [&](const patch_blocks& p) { return p.coefficients(s); });
                 return py::make_tuple(k.q, k.k_diff, k.k_same);
             },
             py::arg("noise"), "(q, c1, c1 + c2) of a mask or dropout noise on these blocks (MATH.md §7 table); ValueError for another patch size.")
        .def("restrict_to", [](const blocks_g& g, py::handle v, const std::string& c) {
                 const matrix_t basis = to_matrix(v, "basis");
                 const centering ce = parse_centering(c);
                 return to_numpy(locked(g, [&](const patch_blocks& p) { return p.restrict_to(basis, ce); }));
             },
             py::arg("basis"), py::arg("center") = "uncentered", "Vᵀ Bd V (K x K) for a D x K basis.")
        .def("__repr__", [](const blocks_g& g) {
            return locked(g, [](const patch_blocks& p) {
                return "PatchBlocks(dim=" + std::to_string(p.dim()) + ", patch=" + std::to_string(p.options().patch_h) + "x" +
                       std::to_string(p.options().patch_w) + ", blocks=" + std::to_string(p.blocks()) + ", n=" + std::to_string(p.n()) + ")";
            });
        });
    add_state_methods<patch_blocks>(cls, "PatchBlocks");
}

void bind_restricted(py::module_& m) {
    py::class_<restricted_statistics>(m, "RestrictedStatistics", R"doc(
What the verification pass knows about a representation V (D x K), exactly: Vᵀ Sxx V, Sxx V and (with
labels) Vᵀ Sxy, Syy. Every analysis of V (basis_alignment, ritz_alignment, ritz_denoising, ritz_tradeoff)
reads only this.)doc")
        .def_property_readonly("center", [](const restricted_statistics& s) { return centering_name(s.center); }, "'uncentered' or 'centered'.")
        .def_readonly("n", &restricted_statistics::n, "Samples of the pass.")
        .def_property_readonly("dim", &restricted_statistics::dim, "D.")
        .def_property_readonly("k", &restricted_statistics::k, "K, the columns of V.")
        .def_property_readonly("basis", [](const restricted_statistics& s) { return to_numpy(s.basis); }, "V (D x K).")
        .def_property_readonly("vsv", [](const restricted_statistics& s) { return to_numpy(s.vsv); }, "Vᵀ Sxx V (K x K).")
        .def_property_readonly("sv", [](const restricted_statistics& s) { return to_numpy(s.sv); }, "Sxx V (D x K).")
        .def_property_readonly("cross", [](const restricted_statistics& s) -> py::object {
                                   return s.cross ? py::cast(*s.cross) : py::none();
                               }, "CrossMoments with sxy = Vᵀ Sxy (K x C) and syy = Syy (C x C), or None without labels.")
        .def("rotated", [](const restricted_statistics& s, py::handle w) { return s.rotated(to_matrix(w, "w")); }, py::arg("w"),
             "The statistics of V W (W: K x K'), exactly, without reading the data again.")
        .def("products", &restricted_statistics::products,
             "Forms Vᵀ V and (Sxx V)ᵀ(Sxx V) once; the Ritz steps then return their results in this pass's\n"
             "coordinates (refined.basis empty: leading_columns forms the columns needed), as the CLI's denoise.")
        .def_property_readonly("in_coordinates", &restricted_statistics::in_coordinates,
                               "True for statistics of V = Q W held as W (coords) in a pass's coordinates.");

    py::class_<restricted_g> cls(m, "RestrictedMoments", R"doc(
The verification pass of MATH.md §7: for a fixed basis V (D x K), one pass over the data accumulates
exactly Vᵀ Sxx V, Sxx V and, with class ids, Vᵀ Sxy and Syy (z = Vᵀ x per sample), so every number about
V is exact for V however approximate the sketch that found it. Memory O(D·K + K·C). Same verbs as
MomentAccumulator; V is part of the configuration (merging needs the same V, bit for bit).

    rm = RestrictedMoments(v, classes=10)
    rm.update(x, labels); s = rm.finish("uncentered"); ritz_alignment(s))doc");
    cls.def(py::init([](py::handle basis, std::int64_t classes) {
                restricted_moments_options o;
                o.basis = to_matrix(basis, "basis");
                o.classes = size_arg(classes, "classes");
                return std::make_unique<restricted_g>(restricted_moments(std::move(o)));
            }),
            py::arg("basis"), py::arg("classes") = 0, "basis: V (D x K, full column rank, finite). classes: C (class ids with every batch; 0: none).")
        .def("update",
             [](restricted_g& g, py::handle x, py::handle labels, std::int64_t given) {
                 const std::uint64_t first_row = row_arg(given);
                 held_batch b = as_batch(x, "batch", first_row);
                 if (labels.is_none()) return locked_mut(g, [&](restricted_moments& r) { r.update(b.view, first_row); });
                 held_labels l = as_labels(labels, first_row);
                 locked_mut(g, [&](restricted_moments& r) { r.update(b.view, l.view, first_row); });
             },
             py::arg("x"), py::arg("labels") = py::none(), py::arg("first_row") = 0,
             "Add a batch and (when configured with classes) its class ids; releases the GIL; strong guarantee.")
        .def("merge", &merge_guarded<restricted_moments>, py::arg("other"), "Chan's rule; another basis or class count raises ValueError before any change.")
        .def_property_readonly("k", [](const restricted_g& g) { return locked(g, [](const restricted_moments& r) { return r.k(); }); }, "K, the columns of V.")
        .def_property_readonly("basis", [](const restricted_g& g) { return to_numpy(locked(g, [](const restricted_moments& r) { return r.basis(); })); }, "V (D x K).")
        .def_property_readonly("has_labels", [](const restricted_g& g) { return locked(g, [](const restricted_moments& r) { return r.has_labels(); }); }, "True when configured with classes.")
        .def("mean", [](const restricted_g& g) { return to_numpy(locked(g, [](const restricted_moments& r) { return r.mean(); })); }, "Mean of the rows (D,).")
        .def("vsv", [](const restricted_g& g, const std::string& c) {
                 const centering ce = parse_centering(c);
                 return to_numpy(locked(g, [&](const restricted_moments& r) { return r.vsv(ce); }));
             }, py::arg("center") = "uncentered", "Vᵀ Sxx V (K x K) in this centering.")
        .def("sv", [](const restricted_g& g, const std::string& c) {
                 const centering ce = parse_centering(c);
                 return to_numpy(locked(g, [&](const restricted_moments& r) { return r.sv(ce); }));
             }, py::arg("center") = "uncentered", "Sxx V (D x K) in this centering.")
        .def("cross", [](const restricted_g& g, const std::string& c) {
                 const centering ce = parse_centering(c);
                 return locked(g, [&](const restricted_moments& r) { return r.cross(ce); });
             }, py::arg("center") = "uncentered", "CrossMoments (sxy = Vᵀ Sxy: K x C, syy: C x C); RuntimeError without labels.")
        .def("finish", [](const restricted_g& g, const std::string& c) {
                 const centering ce = parse_centering(c);
                 return locked(g, [&](const restricted_moments& r) { return r.finish(ce); });
             }, py::arg("center") = "uncentered", "RestrictedStatistics in this centering.")
        .def("take", [](restricted_g& g, const std::string& c) {
                 const centering ce = parse_centering(c);
                 return locked_mut(g, [&](restricted_moments& r) { return std::move(r).finish(ce); });
             }, py::arg("center") = "uncentered",
             "finish() with V and Sxx V moved into the result instead of copied (the same bits): the\n"
             "accumulator is spent (update, merge and finish then raise RuntimeError); for a caller that\n"
             "keeps its bytes to restore it.")
        .def("__repr__", [](const restricted_g& g) {
            return locked(g, [](const restricted_moments& r) {
                return "RestrictedMoments(dim=" + std::to_string(r.dim()) + ", k=" + std::to_string(r.k()) +
                       ", classes=" + std::to_string(r.options().classes) + ", n=" + std::to_string(r.n()) + ")";
            });
        });
    add_state_methods<restricted_moments>(cls, "RestrictedMoments");
}

// The memory estimate the CLI refuses with (recalign/align/verified_memory.hpp), for recalign.verified.
void bind_memory(py::module_& m) {
    m.def("physical_memory", [] { return static_cast<double>(physical_memory()); },
          "This machine's physical memory in bytes (0 when unknown): the default budget of the CLI's --memory\n"
          "and of the verified states' memory=.");
    m.def("resident_memory", [] { return static_cast<double>(resident_memory()); },
          "This process's resident set now in bytes (0 when unknown): the verified states and the exact tracker\n"
          "add it to the CLI's estimate (which models a recalign process) before they compare it with the budget.");
    m.def("run_memory",
          [](const std::string& method, std::uint64_t dim, std::uint64_t classes, std::uint64_t rank, double extra,
             std::uint64_t krylov_blocks) {
              return static_cast<double>(run_memory(method, dim, classes, rank, extra, krylov_blocks));
          },
          py::arg("method"), py::arg("dim"), py::arg("classes"), py::arg("rank") = 0, py::arg("extra") = 0.0,
          py::arg("krylov_blocks") = 1,
          "Bytes a run on method 'exact', 'fd' or 'nystrom' holds at its largest (D = dim, C = classes, 0: no\n"
          "labels; the sketch's rank), plus extra: the estimate the CLI refuses with before reading (require_memory).\n"
          "krylov_blocks > 1: a block Krylov Nyström sketch over that many passes, at its widest basis.");
    m.def("verification_memory",
          [](const std::string& analysis, std::uint64_t dim, std::uint64_t classes, std::uint64_t rank,
             const std::vector<noise_spec>& noises, const py::object& shape, const std::string& layout, bool refines,
             std::uint64_t refine, std::uint64_t block) {
              verification_size v;
              if (analysis == "alignment") v = alignment_verification(rank);
              else if (analysis == "tradeoff") v = tradeoff_verification(dim, classes, rank, refine, block);
              else if (analysis == "denoising") v = denoising_verification(dim, rank, noises, make_shape(shape, layout), refines);
              else throw std::invalid_argument("analysis must be 'alignment', 'tradeoff' or 'denoising', got '" + analysis + "'");
              return py::make_tuple(v.columns, static_cast<double>(verification_memory(dim, v.columns, v.extra)));
          },
          py::arg("analysis"), py::arg("dim"), py::arg("classes"), py::arg("rank"), py::arg("noises") = std::vector<noise_spec>(),
          py::arg("shape") = py::none(), py::arg("layout") = "hwc", py::arg("refines") = true, py::arg("refine") = 1,
          py::arg("block") = 1,
          "(columns, bytes) of a sketch route's verification pass (the CLI's check_verification): the directions\n"
          "verified and the bytes they, the patch blocks and the Monte-Carlo sketches add to run_memory(method,\n"
          "dim, classes, rank). noises (denoising): specs, draws > 0 for Monte-Carlo ones; shape: the image of the\n"
          "specs without their own (dropout: D x 1 x 1 without); refines: with refinement passes (denoise\n"
          "--refine N > 0: their step's temporaries are counted; refine=0 charges none). refine, block (tradeoff):\n"
          "the most CG passes after the first and the preconditioner's block size (the CLI's: --refine, min(384, D)).");
    // The disk the refinement passes need, refused before reading as the CLI's denoise (io/spill.hpp).
    m.def("denoising_spill",
          [](std::uint64_t dim, std::uint64_t rank, const std::vector<noise_spec>& noises, const py::object& shape,
             const std::string& layout, bool refines) {
              return static_cast<double>(denoising_verification(dim, rank, noises, make_shape(shape, layout), refines).spill);
          },
          py::arg("dim"), py::arg("rank"), py::arg("noises"), py::arg("shape") = py::none(), py::arg("layout") = "hwc",
          py::arg("refines") = true,
          "Bytes the denoising refinement passes keep on disk at most (the carried directions, in unlinked files\n"
          "in spill_directory()); 0 without them (refines=False, no masking noise in closed form, a Monte-Carlo one).");
    m.def("spill_directory", &io::spill_directory, "Where spill files go: $TMPDIR when set and not empty, else /tmp.");
    m.def("spill_shortfall", &io::spill_shortfall, py::arg("directory"), py::arg("bytes"),
          "Why `bytes` of spill files could not be made in `directory` (one line naming it; '' when they can): no\n"
          "file can be made there (a spill file of no size is made to find out), or too few bytes are free.");
}

}  // namespace

void bind_highd_analyses(py::module_& m);  // bind_highd_analyses.cpp
void bind_refinement(py::module_& m);      // bind_refinement.cpp

void bind_highd(py::module_& m) {
    bind_patch_blocks(m);
    bind_restricted(m);
    bind_highd_analyses(m);
    bind_refinement(m);
    bind_monte_carlo_sketch(m);
    bind_memory(m);
}

}  // namespace recalign::python
