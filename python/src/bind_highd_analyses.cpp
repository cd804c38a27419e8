// The analyses of MATH.md §7 on a sketch route: the sketched denoising subspace, and the
// Rayleigh–Ritz steps on the verification pass (restricted statistics) whose numbers are exact
// for the subspace returned.
#include <optional>
#include <string>
#include <vector>

#include "common.hpp"
#include "gram_cache.hpp"
#include "recalign/io/spill.hpp"
#include "recalign/align/patch_blocks.hpp"
#include "recalign/align/sketch_denoising.hpp"
#include "recalign/align/verification.hpp"

namespace recalign::python {

namespace {

using blocks_g = guarded<patch_blocks>;

// Runs f(blocks or nullptr) with the GIL released and the blocks' lock held: the blocks
// (D·s doubles) are read in place, never copied; no other lock is taken meanwhile.
template <class F>
auto with_blocks(const blocks_g* g, F&& f) {
    if (!g) {
        py::gil_scoped_release nogil;
        return f(static_cast<const patch_blocks*>(nullptr));
    }
    return locked(*g, [&](const patch_blocks& b) { return f(&b); });
}

constexpr const char* blocks_doc = "blocks: the PatchBlocks of the noise's patch size (1x1 for dropout) over the same rows; None for Gaussian noise.";

}  // namespace

void bind_highd_analyses(py::module_& m) {
    py::class_<gram_cache_g>(m, "GramSolveCache", R"doc(
The masks' preconditioner factors (the patch blocks' Cholesky factors, E⁺U and Woodbury's small
factors: sketched_gram_solve's cache), recorded by sketched_denoising_subspace(..., cache=) and
used by DenoisingRefinement.close(..., factors=) at the first restart instead of being formed
again (the same bits either way). Entries wait in unlinked files in $TMPDIR (about 0.77 GB
written per masking noise at 224x224x3 with 16x16 patches and rank 256); at most 4, the oldest
dropped first. Not serialised.)doc")
        .def(py::init([] { return std::make_unique<gram_cache_g>(std::make_shared<gram_solve_cache>()); }))
        .def("__len__", [](const gram_cache_g& g) { return locked(g, [](const auto& c) { return c->entries.size(); }); },
             "Entries held (one per sketch, blocks and noise coefficients).");

    m.def("sketched_denoising_subspace",
          [](const spectrum& sketch, py::handle noise, const blocks_g* blocks, double rel_tol, gram_cache_g* cache) {
              const noise_spec s = spec_of(noise);
              sketch_denoising_options o;
              o.rel_tol = rel_tol;
              const std::string dir = cache ? io::spill_directory() : std::string();
              return with_blocks(blocks, [&](const patch_blocks* b) {
                  std::unique_lock<std::mutex> lock;  // null cache: none (the library's own default)
                  if (cache) lock = std::unique_lock<std::mutex>(cache->mu);
                  return sketched_denoising_subspace(sketch, s, b, o, cache ? cache->obj.get() : nullptr, dir);
              });
          },
          py::arg("sketch"), py::arg("noise"), py::arg("blocks") = py::none(), py::arg("rel_tol") = 1e-12,
          py::arg("cache") = py::none(),
          (std::string("Theorem 3's subspace from a sketch's top eigenpairs (Spectrum) and the exact patch blocks\n"
                       "(MATH.md §7: an r x r problem). At most r directions, G-orthonormal for the approximate G,\n"
                       "descending. Approximate where the sketch is: measure it with a verification pass. cache: a\n"
                       "GramSolveCache recording the blocks' factors on the way (in $TMPDIR) for the first restart;\n"
                       "FileError when their files cannot be made, the cache as it was.\n") + blocks_doc).c_str());

    m.def("basis_alignment",
          [](const restricted_statistics& s, const std::string& measure, double rel_tol) {
              const alignment_options o = align_options(measure, rel_tol);
              py::gil_scoped_release nogil;
              return basis_alignment(s, o);
          },
          py::arg("statistics"), py::arg("measure") = "paper", py::arg("rel_tol") = 1e-12,
          "The alignment of span(V_1..k) for k = 1..K from restricted statistics with labels (the nested fit),\n"
          "exact for V; eigenvalues are the Rayleigh quotients.");

    py::class_<ritz_alignment_result>(m, "RitzAlignment", "ritz_alignment(): the Ritz vectors of Sxx on span V, their alignment curve and residuals, all exact.")
        .def_readonly("curve", &ritz_alignment_result::curve, "AlignmentResult of span(Y_1..k) (eigenvalues: the Ritz values θ).")
        .def_readonly("refined", &ritz_alignment_result::refined, "RestrictedStatistics of the Ritz vectors Y = V W.")
        .def_property_readonly("residuals", [](const ritz_alignment_result& r) { return to_numpy(r.residuals); },
                               "‖Sxx y_j − θ_j y_j‖ per Ritz vector: sin ∠(y_j, eigenvector j) <= residual_j / gap_j (Davis–Kahan).");
    m.def("ritz_alignment",
          [](const restricted_statistics& s, const std::string& measure, double rel_tol) {
              const alignment_options o = align_options(measure, rel_tol);
              py::gil_scoped_release nogil;
              return ritz_alignment(s, o);
          },
          py::arg("statistics"), py::arg("measure") = "paper", py::arg("rel_tol") = 1e-12,
          "Rayleigh–Ritz for Sxx on span V (the sketch's subspace): the Ritz vectors in descending θ, their\n"
          "alignment curve and residual norms, exact for the vectors returned.");

    py::class_<ritz_spectrum_result>(m, "RitzSpectrum", "ritz_spectrum(): a sketch's spectrum with the Ritz pairs of its own subspace, exact for them.")
        .def_readonly("spectrum", &ritz_spectrum_result::spec,
                      "Spectrum (ritz=True): the Ritz values θ (descending, each the exact second moment along its "
                      "vector, at most the true eigenvalue of its rank), the Ritz vectors Y = V W as basis, the explained "
                      "fractions of the exact trace; the sketch's route, n, total and error information.")
        .def_property_readonly("residuals", [](const ritz_spectrum_result& r) { return to_numpy(r.residuals); },
                               "‖Sxx y_j − θ_j y_j‖ per Ritz vector: sin ∠(y_j, eigenvector j) <= residual_j / gap_j (Davis–Kahan).");
    m.def("ritz_spectrum",
          [](const spectrum& sketch, const restricted_statistics& s, bool basis, double rel_tol) {
              py::gil_scoped_release nogil;
              return ritz_spectrum(sketch, s, basis, rel_tol);
          },
          py::arg("spectrum"), py::arg("statistics"), py::arg("basis") = true, py::arg("rel_tol") = 1e-12,
          "The sketch's Spectrum verified: statistics is the verification pass (RestrictedMoments on\n"
          "spectrum.basis, over the same rows, finished in the spectrum's centering; ValueError otherwise).\n"
          "The result's spectrum holds the Ritz pairs of Sxx on span V in place of the sketch's estimates\n"
          "(basis=False: values only), so SubspaceProjector(result.spectrum, ...) chooses k from exact values,\n"
          "as `recalign project` does on a sketch route (VerifiedSpectrum runs the passes).");

    py::class_<ritz_denoising_result>(m, "RitzDenoising", "ritz_denoising(): Theorem 3's problem restricted to span V.")
        .def_readonly("subspace", &ritz_denoising_result::subspace, "DenoisingSubspace V W (G-orthonormal on span V, descending).")
        .def_readonly("refined", &ritz_denoising_result::refined, "RestrictedStatistics of V W (exact).");
    m.def("ritz_denoising",
          [](const restricted_statistics& s, py::handle noise, const blocks_g* blocks, double rel_tol) {
              const noise_spec n = spec_of(noise);
              return with_blocks(blocks, [&](const patch_blocks* b) { return ritz_denoising(s, n, b, rel_tol); });
          },
          py::arg("statistics"), py::arg("noise"), py::arg("blocks") = py::none(), py::arg("rel_tol") = 1e-12,
          (std::string("Rayleigh–Ritz for Theorem 3 on span V: the generalized problem (Vᵀ Bs Bsᵀ V, Vᵀ G V), exact\n"
                       "from the verification pass (masking: q² (Sxx V)ᵀ(Sxx V), c1 Vᵀ Sxx V + c2 Vᵀ Bd V).\n") + blocks_doc).c_str());

    m.def("denoising_refinement",
          [](const spectrum& sketch, const restricted_statistics& pass, py::handle noise, const blocks_g* blocks,
             std::size_t count, double rel_tol) {
              const noise_spec n = spec_of(noise);
              return to_numpy(with_blocks(blocks, [&](const patch_blocks* b) {
                  return denoising_refinement(sketch, pass, n, b, count, rel_tol);
              }));
          },
          py::arg("sketch"), py::arg("statistics"), py::arg("noise"), py::arg("blocks") = py::none(), py::arg("count") = 64,
          py::arg("rel_tol") = 1e-12,
          (std::string("The refinement step of Theorem 3's Ritz space (MATH.md §7 \"Refining the denoising subspace\"):\n"
                       "from a verification pass on span Q (statistics) and the sketch's Spectrum it came from, the\n"
                       "preconditioned residuals Ĝ⁻¹ (A v_j − μ_j G v_j) of the first `count` informative Ritz vectors of\n"
                       "ritz_denoising (D x <= count, unit columns; Gaussian noise: none). One more pass on\n"
                       "orthonormal_extension(Q, them) corrects what the sketch's Ĝ missed: `recalign denoise --refine`.\n") +
           blocks_doc).c_str());

    py::class_<verified_denoising_result>(m, "RitzVerifiedDenoising", "verified_denoising(): curves and impact exact for the subspaces returned.")
        .def_readonly("denoising", &verified_denoising_result::denoising, "DenoisingResult: curve of the returned V*, clean_curve of the returned U.")
        .def_readonly("impact", &verified_denoising_result::impact, "NoiseImpact between the returned V* and U.");
    m.def("verified_denoising",
          [](const ritz_alignment_result& clean, const restricted_statistics& noisy, py::handle noise, const blocks_g* blocks,
             const std::string& measure, double rel_tol) {
              const noise_spec n = spec_of(noise);
              const alignment_options o = align_options(measure, rel_tol);
              return with_blocks(blocks, [&](const patch_blocks* b) { return verified_denoising(clean, noisy, n, b, o); });
          },
          py::arg("clean"), py::arg("noisy"), py::arg("noise"), py::arg("blocks") = py::none(), py::arg("measure") = "paper",
          py::arg("rel_tol") = 1e-12,
          "The denoising analyses of a sketch route: `clean` = ritz_alignment of the pass, `noisy` the pass's\n"
          "statistics (on a span holding the sketched denoising subspace), refined by ritz_denoising (Gaussian:\n"
          "the clean basis, impact 0). What `recalign denoise --method fd|nystrom` prints.");

    m.def("basis_impact",
          [](py::handle clean, py::handle noisy, double rel_tol) {
              const matrix_t u = to_matrix(clean, "clean"), v = to_matrix(noisy, "noisy");
              py::gil_scoped_release nogil;
              return basis_impact(u, v, rel_tol);
          },
          py::arg("clean"), py::arg("noisy"), py::arg("rel_tol") = 1e-12,
          "NoiseImpact between two bases (D x K each, nested): Σ sin² of the principal angles between their first K columns.");

    m.def("leading_columns",
          [](const restricted_statistics& s, const restricted_statistics& pass, std::size_t k, bool sxx) {
              return to_numpy(leading_columns(s, pass, k, sxx));
          },
          py::arg("s"), py::arg("pass_"), py::arg("k"), py::arg("sxx") = false,
          "The first k columns of the basis of s (Sxx times it with sxx), D x k: from s, or as Q W from the pass\n"
          "when s is in its coordinates (RestrictedStatistics.products).");

    m.def("orthonormal_extension",
          [](py::handle q, py::handle extra) {
              // In place, as the CLI builds its bases: q's columns copied once into a matrix with
              // room for extra's, extended there, handed to NumPy without a copy (at 224x224x3 the
              // copies of the out-of-place form were 1.6 GB of a VerifiedDenoising's peak).
              matrix_t b = to_matrix(extra, "extra");
              matrix_t out = to_matrix(q, "q", b.shape(1));
              const std::size_t m = out.shape(1) - b.shape(1);
              std::size_t k = 0;
              {
                  py::gil_scoped_release nogil;
                  k = orthonormal_extension(out, m, std::move(b));
                  if (k < out.shape(1)) out = leading_columns_of(out, k);  // dependent columns left out
              }
              return to_numpy(std::move(out));
          },
          py::arg("q"), py::arg("extra"),
          "An orthonormal basis of span(q, extra) (q orthonormal): q's columns, then what `extra` adds\n"
          "(dependent directions left out). The verification pass of denoise runs on span(U, V_1, ..., V_m).");

    m.def("ritz_tradeoff",
          [](const restricted_statistics& s, double trace_xx, std::vector<double> lambdas, std::size_t k, double rel_tol) {
              tradeoff_options o;
              o.lambdas = std::move(lambdas);
              o.k = k;
              o.rel_tol = rel_tol;
              py::gil_scoped_release nogil;
              return ritz_tradeoff(s, trace_xx, o);
          },
          py::arg("statistics"), py::arg("trace_xx"), py::arg("lambdas"), py::arg("k"), py::arg("rel_tol") = 1e-12,
          "Theorem 1 by Rayleigh–Ritz on span V (restricted statistics with labels; trace_xx = tr(Sxx), a\n"
          "spectrum's total). The losses are exactly those of the encoders returned: upper bounds on the optimum.");

    m.def("tradeoff_ritz_basis",
          [](const statistics& sketch, std::optional<restricted_statistics> previous, py::object diagonal,
             const blocks_g* blocks) {
              if (blocks && !diagonal.is_none())
                  throw std::invalid_argument("tradeoff_ritz_basis: give the diagonal or the blocks, not both");
              const restricted_statistics* prev = previous ? &*previous : nullptr;
              if (blocks)
                  return to_numpy(with_blocks(blocks, [&](const patch_blocks* b) { return tradeoff_ritz_basis(sketch, prev, *b); }));
              std::optional<vector_t> d;
              if (!diagonal.is_none()) d = to_vector(diagonal, "diagonal");
              matrix_t out;
              {
                  py::gil_scoped_release nogil;
                  out = tradeoff_ritz_basis(sketch, prev, d ? &*d : nullptr);
              }
              return to_numpy(out);
          },
          py::arg("sketch"), py::arg("previous") = py::none(), py::arg("diagonal") = py::none(),
          py::arg("blocks") = py::none(),
          "The Ritz space of the trade-off: orth(U, Sxy) from a sketch's statistics with labels; given the pass\n"
          "on such a space (`previous`), that space plus Sxx Sxy. With a preconditioner (`diagonal`: the exact\n"
          "diagonal of Sxx, PatchBlocks.diagonal; `blocks`: exact diagonal blocks of Sxx, a PatchBlocks) also\n"
          "Ĝ⁻¹ Sxy, then Ĝ⁻¹ R of the previous span's Galerkin residual R: the block preconditioned CG passes\n"
          "`recalign tradeoff` runs (blocks of 384 coordinates).");

    py::class_<tradeoff_residual>(m, "TradeoffResidual",
                                  "tradeoff_galerkin_residual(): R = Sxy − Sxx X of the Galerkin solution X on a pass's span.")
        .def_property_readonly("residual", [](const tradeoff_residual& r) { return to_numpy(r.residual); }, "D x C residual R, exact.")
        .def_readonly("relative", &tradeoff_residual::relative, "‖R‖_F / ‖Sxy‖_F.")
        .def_readonly("supervised_loss", &tradeoff_residual::supervised_loss,
                      "tr(Syy) − tr(Sxyᵀ X): the λ = 0 loss of the span (K >= C), exact.");
    m.def("tradeoff_galerkin_residual",
          [](const statistics& sketch, const restricted_statistics& pass) {
              py::gil_scoped_release nogil;
              return tradeoff_galerkin_residual(sketch, pass);
          },
          py::arg("sketch"), py::arg("statistics"),
          "The exact residual R = Sxy − Sxx X of X = Q (Qᵀ Sxx Q)⁺ Qᵀ Sxy on a verification pass's span Q (the\n"
          "pass's statistics; the sketch's statistics give Sxy): X minimises the λ = 0 loss over span Q, its\n"
          "excess over the optimum is tr(Rᵀ Sxx⁻¹ R).");
    m.def("tradeoff_excess_estimate",
          [](const statistics& sketch, const blocks_g& blocks, const restricted_statistics& pass) {
              const tradeoff_excess e =
                  locked(blocks, [&](const patch_blocks& b) { return tradeoff_excess_estimate(sketch, b, pass); });
              return py::make_tuple(e.residual, e.estimate);
          },
          py::arg("sketch"), py::arg("blocks"), py::arg("statistics"),
          "(‖R‖_F / ‖Sxy‖_F, tr(Rᵀ Ĝ⁻¹ R) / λ=0 loss) after a verification pass on span Q (statistics): the\n"
          "Galerkin residual's relative norm (exact) and an estimate of the λ = 0 loss's relative excess over its\n"
          "optimum (Ĝ from the blocks), which `recalign tradeoff`'s adaptive stop compares with\n"
          "TRADEOFF_STOP.");
    m.attr("TRADEOFF_PRECONDITIONER_BLOCK") = tradeoff_preconditioner_block;
    m.attr("TRADEOFF_STOP") = tradeoff_stop;
    m.def("sketch_preconditioned",
          [](const spectrum& sketch, py::object b, py::object diagonal, const blocks_g* blocks) {
              if (!blocks == diagonal.is_none())
                  throw std::invalid_argument("sketch_preconditioned: give the diagonal or the blocks (one of them)");
              const matrix_t rhs = to_matrix(b, "b");
              if (blocks)
                  return to_numpy(with_blocks(blocks, [&](const patch_blocks* p) { return sketch_preconditioned(sketch, *p, rhs); }));
              const vector_t d = to_vector(diagonal, "diagonal");
              matrix_t out;
              {
                  py::gil_scoped_release nogil;
                  out = sketch_preconditioned(sketch, d, rhs);
              }
              return to_numpy(out);
          },
          py::arg("sketch"), py::arg("b"), py::arg("diagonal") = py::none(), py::arg("blocks") = py::none(),
          "Ĝ⁻¹ B for Ĝ = U Λ Uᵀ + E (Woodbury): the sketch's top part plus E, the exact diagonal (`diagonal`)\n"
          "or diagonal blocks (`blocks`, a PatchBlocks over the same rows) of Sxx − U Λ Uᵀ.");
}

}  // namespace recalign::python
