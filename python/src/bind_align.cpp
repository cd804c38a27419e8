// Analyses (alignment curves, trade-off, denoising alignment, noise impact), noise models
// and the alignment tracker.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <tuple>
#include <string>
#include <vector>

#include "common.hpp"
#include "corrupted_state.hpp"
#include "recalign/align/alignment.hpp"
#include "recalign/align/denoising.hpp"
#include "recalign/align/noise.hpp"
#include "recalign/align/tracker.hpp"
#include "recalign/align/tradeoff.hpp"
#include "recalign/align/verified_memory.hpp"

namespace recalign::python {

image_shape make_shape(const py::object& shape, const std::string& layout) {
    image_shape s;
    if (layout == "hwc") s.layout = image_layout::hwc;
    else if (layout == "chw") s.layout = image_layout::chw;
    else throw std::invalid_argument("layout must be 'hwc' or 'chw', got '" + layout + "'");
    if (shape.is_none()) return s;
    std::vector<std::size_t> v = shape.cast<std::vector<std::size_t>>();
    if (v.size() != 2 && v.size() != 3) throw std::invalid_argument("shape must be (height, width) or (height, width, channels)");
    s.height = v[0];
    s.width = v[1];
    s.channels = v.size() == 3 ? v[2] : 1;
    return s;
}
py::object shape_tuple(const image_shape& s) {
    if (s.empty()) return py::none();
    return py::make_tuple(s.height, s.width, s.channels);
}

alignment_options align_options(const std::string& measure, double rel_tol) {
    alignment_options o;
    o.measure = parse_measure(measure);
    o.rel_tol = rel_tol;
    return o;
}

noise_spec spec_of(py::handle h) {
    if (py::isinstance<py::str>(h)) return parse_noise_spec(h.cast<std::string>());
    return h.cast<noise_spec>();
}

// A Python corruption function, callable without the GIL held by the caller: the object
// lives behind a shared_ptr whose deleter takes the GIL, so C++ may copy and destroy the
// corrupt_fn (and the state holding it) with the GIL released.
corrupt_fn python_corrupter(py::object fn, const std::string& name) {
    std::shared_ptr<py::object> f(new py::object(std::move(fn)), [](py::object* o) {
        py::gil_scoped_acquire gil;
        delete o;
    });
    return [f, name](const matrix_t& clean, matrix_t& out, const noise_key& key) {
        py::gil_scoped_acquire gil;
        try {
            py::array_t<double> c({static_cast<py::ssize_t>(clean.shape(0)), static_cast<py::ssize_t>(clean.shape(1))});
            if (clean.size()) std::memcpy(c.mutable_data(), clean.data(), clean.size() * sizeof(double));
            py::dict k;
            k["seed"] = key.seed;
            k["batch"] = key.batch;
            k["draw"] = key.draw;
            k["first_row"] = key.first_row;
            py::object r = (*f)(c, k);
            auto a = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(r);
            if (!a) throw std::invalid_argument("the corruption returned something that is not a float array");
            if (a.ndim() != 2 || static_cast<std::size_t>(a.shape(0)) != out.shape(0) ||
                static_cast<std::size_t>(a.shape(1)) != out.shape(1))
                throw std::invalid_argument("the corruption returned an array of the wrong shape");
            if (out.size()) std::memcpy(out.data(), a.data(), out.size() * sizeof(double));
        } catch (py::error_already_set& e) {
            // Raised in Python: reported as ValueError with its text (the state is unchanged).
            throw std::invalid_argument("monte_carlo_noise '" + name + "': the corruption function raised: " + e.what());
        }
    };
}

std::shared_ptr<py::object> shared_callable(py::object fn) {
    return std::shared_ptr<py::object>(new py::object(std::move(fn)), [](py::object* o) {
        py::gil_scoped_acquire gil;
        delete o;
    });
}

namespace {

using moments_g = guarded<moment_accumulator>;


using mc_g = corrupted_g<monte_carlo_noise>;

using tracker_g = guarded<alignment_tracker>;

}  // namespace

namespace {
// The CLI's refusal of an exact denoise or align that will not fit (tools/recalign/validate.cpp
// require_memory, cmd_denoise.cpp), from the same model: run_memory("exact", ...) with
// exact_denoise_extra. memory: GiB (None: the physical memory; inf: no check).
void require_exact_memory(const tracker_options& o, std::optional<double> memory) {
    if (memory && !(*memory > 0))
        throw std::invalid_argument("AlignmentTracker: memory must be a number of GiB > 0 (the CLI's --memory)");
    if (memory && std::isinf(*memory)) return;
    const long double budget = memory ? static_cast<long double>(*memory) * 1073741824.0L : physical_memory();
    // + what this process holds already (the interpreter, its modules, the caller's data): the model
    // is of a recalign process.
    const long double held = resident_memory();
    const long double need = run_memory("exact", o.dim, o.classes, 0,
                                        static_cast<long double>(exact_denoise_extra(o.dim, o.noises, o.replicates))) +
                             held;
    if (budget <= 0 || need <= budget) return;
    auto gib = [](long double b) {
        char text[64];
        const long double g = b / 1073741824.0L;
        std::snprintf(text, sizeof text, g < 10 ? "%.2Lf GiB" : "%.0Lf GiB", g);
        return std::string(text);
    };
    throw std::invalid_argument("AlignmentTracker: the exact route needs about " + gib(need) + " for D = " +
                                std::to_string(o.dim) + " and C = " + std::to_string(o.classes) + " (" + gib(held) +
                                " of it held by this process already; " +
                                (memory ? "memory is " : "this machine has ") + gib(budget) +
                                "): use a sketch route (recalign.VerifiedDenoising, VerifiedAlignment)");
}
}  // namespace

void bind_align(py::module_& m) {
    // ---- alignment curves -------------------------------------------------------------
    py::class_<alignment_result>(m, "AlignmentResult", "An alignment curve: curve[k-1] = alignment of the top-k subspace.")
        .def_property_readonly("measure", [](const alignment_result& r) { return measure_name(r.measure); }, "'paper' (Eq. 7), 'rank' or 'fit' (MATH.md §2).")
        .def_property_readonly("center", [](const alignment_result& r) { return centering_name(r.center); }, "'uncentered' or 'centered': the statistics' centering.")
        .def_property_readonly("method", [](const alignment_result& r) { return route_name(r.method); }, "Route of the spectrum: 'exact', 'fd' or 'nystrom'.")
        .def_readonly("n", &alignment_result::n, "Samples the statistics describe.")
        .def_readonly("dim", &alignment_result::dim, "D, the row width.")
        .def_readonly("classes", &alignment_result::classes, "C, the number of classes (target columns).")
        .def_property_readonly("eigenvalues", [](const alignment_result& r) { return to_numpy(r.eigenvalues); }, "Eigenvalues of Sxx used (descending, length max_k; scatter units: sums over samples, not divided by n).")
        .def_property_readonly("contributions", [](const alignment_result& r) { return to_numpy(r.contributions); }, "Per-direction contribution before normalising (length max_k; 0 where skipped).")
        .def_property_readonly("curve", [](const alignment_result& r) { return to_numpy(r.curve); }, "curve[k-1] = alignment of the top-k subspace, k = 1..max_k (cumulative contributions / normaliser).")
        .def_readonly("normaliser", &alignment_result::normaliser, "The denominator of the curve (for 'paper': ‖Syy‖_F², the paper's ‖Y Yᵀ‖²).")
        .def_readonly("skipped", &alignment_result::skipped, "Directions under rel_tol · largest eigenvalue: numerically null, contribute 0.")
        .def_readonly("max_k", &alignment_result::max_k, "Directions available: D on the exact route, the sketch's rank otherwise.")
        .def_readonly("complete", &alignment_result::complete,
                      "False when the curve comes from a truncated (sketch) spectrum.")
        .def("__repr__", [](const alignment_result& r) {
            return std::string("AlignmentResult(measure='") + measure_name(r.measure) + "', center='" +
                   centering_name(r.center) + "', method='" + route_name(r.method) + "', n=" + std::to_string(r.n) +
                   ", max_k=" + std::to_string(r.max_k) + ", skipped=" + std::to_string(r.skipped) + ")";
        });

    m.def("alignment_curve",
          [](const statistics& s, const std::string& measure, double rel_tol) {
              const alignment_options o = align_options(measure, rel_tol);
              py::gil_scoped_release nogil;
              return alignment_curve(s, o);
          },
          py::arg("statistics"), py::arg("measure") = "paper", py::arg("rel_tol") = 1e-12,
          R"doc(Alignment curve for every k (MATH.md §2) from finished statistics with labels
(MomentAccumulator.finish(center), or a sketch's finish(labels): up to the sketch's rank).
measure: 'paper' (the paper's Eq. 7 / Section 6.8), 'rank', 'fit' or 'published' (the authors' code:
100·sqrt of the rank measure, on 0-100; use finish('inputs') for their centering).)doc");

    // ---- trade-off (Theorem 1) --------------------------------------------------------
    py::class_<tradeoff_point>(m, "TradeoffPoint", "The optimum of the Theorem 1 loss for one λ.")
        .def_readonly("lambda_", &tradeoff_point::lambda, "λ, the weight of the reconstruction loss.")
        .def_property_readonly("v", [](const tradeoff_point& p) { return to_numpy(p.v); }, "D x K encoder V*.")
        .def_property_readonly("w", [](const tradeoff_point& p) { return to_numpy(p.w); }, "K x C predictor head W*.")
        .def_property_readonly("z", [](const tradeoff_point& p) { return to_numpy(p.z); }, "K x D decoder Z*.")
        .def_property_readonly("eigenvalues", [](const tradeoff_point& p) { return to_numpy(p.eigenvalues); }, "Top-K' generalized eigenvalues of (Sxy Sxyᵀ + λ Sxx², Sxx), descending.")
        .def_readonly("supervised_loss", &tradeoff_point::supervised_loss, "‖W*ᵀV*ᵀX − Y‖² (a sum over samples), exact from the moments.")
        .def_readonly("reconstruction_loss", &tradeoff_point::reconstruction_loss, "‖Z*ᵀV*ᵀX − X‖² (a sum over samples), exact from the moments.")
        .def_readonly("loss", &tradeoff_point::loss, "supervised_loss + λ · reconstruction_loss.")
        .def_property_readonly("status", [](const tradeoff_point& p) { return solver_status_name(p.status); }, "This λ's eigensolve: 'converged', 'not_converged' or 'breakdown'.")
        .def("__repr__", [](const tradeoff_point& p) {
            return "TradeoffPoint(lambda=" + std::to_string(p.lambda) + ", supervised_loss=" + std::to_string(p.supervised_loss) +
                   ", reconstruction_loss=" + std::to_string(p.reconstruction_loss) + ")";
        });
    py::class_<tradeoff_result>(m, "TradeoffResult", "The Theorem 1 optimum for every λ given to tradeoff(): shared dimensions and one TradeoffPoint per λ.")
        .def_property_readonly("center", [](const tradeoff_result& r) { return centering_name(r.center); }, "'uncentered' or 'centered': the statistics' centering.")
        .def_readonly("n", &tradeoff_result::n, "Samples the statistics describe.")
        .def_readonly("dim", &tradeoff_result::dim, "D, the row width.")
        .def_readonly("classes", &tradeoff_result::classes, "C, the number of classes.")
        .def_readonly("k", &tradeoff_result::k, "K' = min(K, rank of Sxx): the columns actually returned.")
        .def_readonly("rank_xx", &tradeoff_result::rank_xx, "Directions of Sxx kept by the whitening (eigenvalue > rel_tol · largest).")
        .def_readonly("dropped", &tradeoff_result::dropped, "Null directions of Sxx left out (D − rank_xx).")
        .def_property_readonly("status", [](const tradeoff_result& r) { return solver_status_name(r.status); }, "The eigendecomposition of Sxx: 'converged', 'not_converged' or 'breakdown'.")
        .def_readonly("points", &tradeoff_result::points, "One TradeoffPoint per λ, in the order given.");
    m.def("tradeoff",
          [](const statistics& s, std::vector<double> lambdas, std::size_t k, double rel_tol) {
              tradeoff_options o;
              o.lambdas = std::move(lambdas);
              o.k = k;
              o.rel_tol = rel_tol;
              py::gil_scoped_release nogil;
              return tradeoff(s, o);
          },
          py::arg("statistics"), py::arg("lambdas"), py::arg("k"), py::arg("rel_tol") = 1e-12,
          "Closed-form optimum of ‖WᵀVᵀX − Y‖² + λ‖ZᵀVᵀX − X‖² for every λ (the paper's Theorem 1).");

    // ---- noise models -----------------------------------------------------------------
    py::class_<noise_spec>(m, "NoiseSpec", R"doc(
A noise model: 'gaussian:sigma=0.1', 'dropout:ratio=0.3',
'mask:patch=2x2,ratio=0.5,scheme=fixed[,shape=28x28x1,layout=hwc][,draws=64,seed=7]'.
draws = 0 is the closed form; draws > 0 asks a tracker for a Monte-Carlo estimate.)doc")
        .def(py::init([](const std::string& text) { return parse_noise_spec(text); }), py::arg("text"), "Parse a spec text; errors name the bad field.")
        .def_static("parse", &parse_noise_spec, py::arg("text"), "The same as NoiseSpec(text): parse a spec text; errors name the bad field.")
        .def_property_readonly("family", [](const noise_spec& s) { return noise_family_name(s.family); }, "'gaussian', 'dropout' or 'mask'.")
        .def_readonly("sigma", &noise_spec::sigma, "Gaussian: the standard deviation (in the data's units).")
        .def_readonly("ratio", &noise_spec::ratio, "Dropout / mask: the probability of dropping a coordinate / a patch.")
        .def_property_readonly("patch", [](const noise_spec& s) { return py::make_tuple(s.patch_h, s.patch_w); }, "Mask: (height, width) of a patch in pixels.")
        .def_property_readonly("scheme", [](const noise_spec& s) { return mask_scheme_name(s.scheme); }, "Mask: how patches are drawn ('bernoulli' or 'fixed').")
        .def_property_readonly("shape", [](const noise_spec& s) { return shape_tuple(s.shape); }, "Mask: the image shape (H, W, C) given in the spec, or None (taken from the context).")
        .def_property_readonly("layout", [](const noise_spec& s) { return image_layout_name(s.shape.layout); }, "Mask: 'hwc' or 'chw', the order of the flattened pixels.")
        .def_readonly("draws", &noise_spec::draws, "0: closed form; > 0: Monte-Carlo draws per sample.")
        .def_readonly("seed", &noise_spec::seed, "Monte-Carlo seed (noise depends only on seed, global row and draw).")
        .def("__str__", [](const noise_spec& s) { return to_string(s); })
        .def("__repr__", [](const noise_spec& s) { return "NoiseSpec('" + to_string(s) + "')"; })
        .def("__eq__", [](const noise_spec& a, const noise_spec& b) { return to_string(a) == to_string(b); })
        .def("__hash__", [](const noise_spec& s) { return py::hash(py::str(to_string(s))); })
        .def(py::pickle([](const noise_spec& s) { return py::make_tuple(to_string(s)); },
                        [](const py::tuple& t) { return parse_noise_spec(t[0].cast<std::string>()); }));
    py::implicitly_convertible<py::str, noise_spec>();

    py::class_<noise_moments>(m, "NoiseMoments", "Bs = Σ E[x'] xᵀ and G = Σ E[x' x'ᵀ] (D x D, sums over the samples).")
        .def(py::init([](std::uint64_t n, py::handle bs, py::handle g) {
                 noise_moments r;
                 r.n = n;
                 r.bs = to_matrix(bs, "bs");
                 r.g = to_matrix(g, "g");
                 return r;
             }),
             py::arg("n"), py::arg("bs"), py::arg("g"), "From sums over n samples: bs = Σ E[x′] xᵀ and g = Σ E[x′ x′ᵀ] (D x D each).")
        .def_readonly("n", &noise_moments::n, "Samples summed over.")
        .def_property_readonly("bs", [](const noise_moments& r) { return to_numpy(r.bs); }, "Bs = Σ E[x′] xᵀ (D x D, a sum over samples).")
        .def_property_readonly("g", [](const noise_moments& r) { return to_numpy(r.g); }, "G = Σ E[x′ x′ᵀ] (D x D, a sum over samples).");

    m.def("closed_form_noise",
          [](const noise_spec& s, const moments_g& g, const std::string& center, py::object shape, const std::string& layout) {
              const image_shape sh = make_shape(shape, layout);
              const centering c = parse_centering(center);
              return locked(g, [&](const moment_accumulator& a) { return closed_form_noise(s, a.sxx(c), a.n(), sh); });
          },
          py::arg("spec"), py::arg("moments"), py::arg("center") = "uncentered", py::arg("shape") = py::none(),
          py::arg("layout") = "hwc", "Closed-form noise expectations (MATH.md §4) from the accumulator's Sxx.");

    py::class_<mc_g> mc(m, "MonteCarloNoise", R"doc(
Monte-Carlo estimate of a built-in noise model's expectations (Bs, G) with replicate standard
errors. The noise of a sample depends only on (seed, its global row, draw): pass first_row
when shards of one stream are merged. Picklable (the spec travels with the state).)doc");
    mc.def(py::init([](std::int64_t dim, std::optional<noise_spec> spec, py::object corrupt, std::optional<std::int64_t> draws,
                       std::optional<std::uint64_t> seed, std::string name, py::object shape, const std::string& layout,
                       std::int64_t replicates) {
               const image_shape sh = make_shape(shape, layout);
               monte_carlo_options o;
               o.dim = size_arg(dim, "dim");
               o.replicates = size_arg(replicates, "replicates");
               corrupted_model model = model_of(spec, corrupt, draws, seed, name, "MonteCarloNoise");
               o.draws = model.draws;
               o.seed = model.seed;
               o.name = std::move(model.name);
               return make_corrupted(monte_carlo_noise(o, {}), spec, sh, corrupt, "MonteCarloNoise");
           }),
           py::arg("dim"), py::arg("spec") = py::none(), py::kw_only(), py::arg("corrupt") = py::none(),
           py::arg("draws") = py::none(), py::arg("seed") = py::none(), py::arg("name") = "", py::arg("shape") = py::none(),
           py::arg("layout") = "hwc", py::arg("replicates") = 2,
           R"doc(Either a built-in spec with draws ('dropout:ratio=0.3,draws=16,seed=1', or draws= and seed= given
here for a spec that leaves them unset; a contradiction is refused), or any corruption written in
Python: corrupt(clean, key) -> corrupted, where clean is a (rows x dim) float64 array and key a dict
(seed, batch, draw, first_row) from which all randomness must be derived (so a resumed run draws the
same noise), with draws (default 16), seed (default 0) and a name identifying the model (part of the configuration: states
merge only with the same name). The function is pickled with the state (by reference).)doc")
        .def("estimate",
             [](const mc_g& g) {
                 monte_carlo_estimate e = locked(g, [](const corrupted<monte_carlo_noise>& s) { return s.acc.estimate(); });
                 py::dict d;
                 d["moments"] = e.moments;
                 d["bs_stderr"] = to_numpy(e.bs_stderr);
                 d["g_stderr"] = to_numpy(e.g_stderr);
                 d["bs_stderr_fro"] = e.bs_stderr_fro;
                 d["g_stderr_fro"] = e.g_stderr_fro;
                 return d;
             },
             "dict: moments (NoiseMoments), bs_stderr, g_stderr, bs_stderr_fro, g_stderr_fro.");
    bind_corrupted_verbs<monte_carlo_noise>(
        mc, "MonteCarloNoise",
        {"Corrupt the batch `draws` times and accumulate; releases the GIL.",
         "Add another estimate of the same model (name, draws, seed, replicates) over other rows; strong guarantee.",
         "Without either, the state can merge and estimate, and update() raises."});

    // ---- denoising (Theorem 3) and noise impact ------------------------------------------
    py::class_<denoising_subspace_result>(m, "DenoisingSubspace", "V* of Theorem 3: top generalized eigenvectors of (Bs Bsᵀ, G).")
        .def_property_readonly("eigenvalues", [](const denoising_subspace_result& r) { return to_numpy(r.eigenvalues); }, "Generalized eigenvalues of (Bs Bsᵀ, G) on range(G), descending.")
        .def_property_readonly("basis", [](const denoising_subspace_result& r) { return to_numpy(r.basis); }, "V* (D x r), G-orthonormal columns; sign: largest entry of each column positive.")
        .def_readonly("rank_g", &denoising_subspace_result::rank_g, "Directions of G kept by the whitening (eigenvalue > rel_tol · largest).")
        .def_readonly("dropped", &denoising_subspace_result::dropped, "Null directions of G left out (D − rank_g).")
        .def_readonly("informative", &denoising_subspace_result::informative, "Eigenvalues > rel_tol · largest: beyond them V* is arbitrary.")
        .def_property_readonly("status", [](const denoising_subspace_result& r) { return solver_status_name(r.status); }, "The eigendecomposition of G and the SVD: 'converged', 'not_converged' or 'breakdown'.");
    m.def("denoising_subspace",
          [](const noise_moments& noisy, double rel_tol) {
              py::gil_scoped_release nogil;
              return denoising_subspace(noisy, rel_tol);
          },
          py::arg("noisy"), py::arg("rel_tol") = 1e-12, "V* of Theorem 3 from noise expectations (NoiseMoments: closed_form_noise or MonteCarloNoise.estimate):\nthe top generalized eigenvectors of (Bs Bsᵀ, G); directions of G under rel_tol · largest are dropped.");

    py::class_<denoising_result>(m, "DenoisingResult", "Denoising alignment (Theorem 3, Eq. 9) against the clean curve.")
        .def_property_readonly("measure", [](const denoising_result& r) { return measure_name(r.measure); }, "'paper', 'rank' or 'fit' (MATH.md §2).")
        .def_property_readonly("center", [](const denoising_result& r) { return centering_name(r.center); }, "'uncentered' or 'centered': the statistics' centering.")
        .def_readonly("n", &denoising_result::n, "Samples the clean statistics describe.")
        .def_readonly("dim", &denoising_result::dim, "D, the row width.")
        .def_readonly("classes", &denoising_result::classes, "C, the number of classes.")
        .def_readonly("subspace", &denoising_result::subspace, "The DenoisingSubspace V* the curve is computed for.")
        .def_property_readonly("curve", [](const denoising_result& r) { return to_numpy(r.curve); }, "Alignment of span(V*_K) on the clean statistics, K = 1..max_k.")
        .def_property_readonly("clean_curve", [](const denoising_result& r) { return to_numpy(r.clean_curve); }, "Alignment of span(U_K) (alignment_curve), K = 1..max_k, same normaliser.")
        .def_property_readonly("relative_difference", [](const denoising_result& r) { return to_numpy(r.relative_difference); }, "(curve − clean_curve) / clean_curve; NaN where clean_curve = 0.")
        .def_readonly("normaliser", &denoising_result::normaliser, "The clean curve's normaliser (both curves share one scale).")
        .def_readonly("skipped", &denoising_result::skipped, "Directions of V* adding nothing in the Sxx metric.")
        .def_readonly("max_k", &denoising_result::max_k, "Last K: min(informative directions of V*, clean curve length); see stop_reason.")
        .def_readonly("stop_reason", &denoising_result::stop_reason,
                      "Why the curve ends before the clean one ('' when it does not).");
    m.def("denoising_alignment",
          [](const statistics& clean, const noise_moments& noisy, const std::string& measure, double rel_tol) {
              denoising_options o;
              o.measure = parse_measure(measure);
              o.rel_tol = rel_tol;
              py::gil_scoped_release nogil;
              return denoising_alignment(clean, noisy, o);
          },
          py::arg("clean"), py::arg("noisy"), py::arg("measure") = "paper", py::arg("rel_tol") = 1e-12,
          "Alignment of the optimal denoising encoder V* (Theorem 3, Eq. 9) on the clean statistics\n"
          "(MomentAccumulator.finish: exact route), against the clean curve.");

    py::class_<noise_impact_result>(m, "NoiseImpact", "Label-free diagnostic (Corollary 3.1): Σ sin² of principal angles between span(V*_K) and span(U_K).")
        .def_property_readonly("distance", [](const noise_impact_result& r) { return to_numpy(r.distance); }, "distance[K-1] = Σ sin² of the principal angles between span(V*_K) and span(U_K).")
        .def_property_readonly("normalised", [](const noise_impact_result& r) { return to_numpy(r.normalised); }, "distance / K, in [0, 1].")
        .def_readonly("max_k", &noise_impact_result::max_k, "K up to the informative directions of both V* and U.")
        .def_property_readonly("status", [](const noise_impact_result& r) { return solver_status_name(r.status); }, "The decompositions' outcome: 'converged', 'not_converged' or 'breakdown'.");
    m.def("noise_impact",
          [](const statistics& clean, const noise_moments& noisy, double rel_tol) {
              noise_impact_options o;
              o.rel_tol = rel_tol;
              py::gil_scoped_release nogil;
              return noise_impact(clean, noisy, o);
          },
          py::arg("clean"), py::arg("noisy"), py::arg("rel_tol") = 1e-12,
          "Label-free diagnostic (Corollary 3.1) from finished statistics with the complete spectrum.");

    // ---- tracker -------------------------------------------------------------------------
    py::class_<tracker_noise_report>(m, "TrackerNoiseReport", "One noise model's part of a TrackerReport: its denoising curve and impact.")
        .def_readonly("spec", &tracker_noise_report::spec, "Canonical text of the noise spec.")
        .def_readonly("monte_carlo", &tracker_noise_report::monte_carlo, "True for a Monte-Carlo estimate (draws > 0), False for the closed form.")
        .def_readonly("denoising", &tracker_noise_report::denoising, "The DenoisingResult of this noise on the current clean statistics.")
        .def_readonly("impact", &tracker_noise_report::impact, "The NoiseImpact (label-free) of this noise.")
        .def_readonly("bs_stderr_fro", &tracker_noise_report::bs_stderr_fro, "Monte Carlo: Frobenius norm of Bs's replicate standard error (0 for closed forms): an estimate's error.")
        .def_readonly("g_stderr_fro", &tracker_noise_report::g_stderr_fro, "Monte Carlo: Frobenius norm of G's replicate standard error (0 for closed forms).")
        .def_readonly("change", &tracker_noise_report::change, "max |Δ denoising curve| since the previous report (NaN at the first).");
    py::class_<tracker_report>(m, "TrackerReport", "AlignmentTracker.report(): the clean curve and one TrackerNoiseReport per noise, at n samples.")
        .def_readonly("n", &tracker_report::n, "Samples seen.")
        .def_readonly("reports", &tracker_report::reports, "How many reports came before this one.")
        .def_readonly("clean", &tracker_report::clean, "The clean AlignmentResult.")
        .def_readonly("clean_change", &tracker_report::clean_change, "max |Δ clean curve| since the previous report (NaN at the first).")
        .def_readonly("noises", &tracker_report::noises, "One TrackerNoiseReport per configured noise, in order.");

    py::class_<tracker_g> tr(m, "AlignmentTracker", R"doc(
Feeds minibatches of (images, class labels) into the clean moments and any number of noise
models (closed form, or Monte Carlo when a spec has draws), and reports the clean alignment,
denoising alignment and noise impact curves with their change since the previous report.

    t = AlignmentTracker(784, 10, shape=(28, 28), noises=['mask:patch=4x4,ratio=0.5,scheme=fixed'])
    t.update(images, labels)      # GIL released; first_row defaults to n (global row index)
    r = t.report(); r.clean.curve; r.noises[0].denoising.curve
    pickle.dumps(t); t.merge(other); t.save(path))doc");
    tr.def(py::init([](std::int64_t dim, std::int64_t classes, py::object shape, const std::string& layout, py::iterable noises,
                       const std::string& measure, const std::string& center, std::int64_t replicates, double rel_tol,
                       std::optional<double> memory) {
               tracker_options o;
               o.dim = size_arg(dim, "dim");
               o.classes = size_arg(classes, "classes");
               o.shape = make_shape(shape, layout);
               for (py::handle h : noises) o.noises.push_back(spec_of(h));
               o.measure = parse_measure(measure);
               o.raw_targets = center == "inputs";  // MATH.md §8: inputs centered, targets raw
               o.center = o.raw_targets ? centering::centered : parse_centering(center);
               o.replicates = size_arg(replicates, "replicates");
               o.rel_tol = rel_tol;
               require_exact_memory(o, memory);  // before the D x D moments are allocated
               return std::make_unique<tracker_g>(alignment_tracker(o));
           }),
           py::arg("dim"), py::arg("classes"), py::arg("shape") = py::none(), py::arg("layout") = "hwc",
           py::arg("noises") = py::tuple(), py::arg("measure") = "paper", py::arg("center") = "uncentered",
           py::arg("replicates") = 2, py::arg("rel_tol") = 1e-12, py::arg("memory") = py::none(), "dim: D. classes: C (labels in [0, C)). shape/layout: the image shape (H, W[, C]) and pixel order, needed by\nmask noises. noises: specs (text or NoiseSpec) tracked beside the clean curve. measure: 'paper', 'rank'\nor 'fit'. center: 'uncentered' (the paper's code) or 'centered'. replicates: Monte-Carlo replicate count\n(standard errors). rel_tol: directions under rel_tol · largest eigenvalue are numerically null. memory: the\nbudget in GiB (the CLI's --memory; None: this machine's physical memory; inf: no check): a tracker whose\nexact route (3 D x D, and a Monte-Carlo noise's replicate sums) would not fit is refused (ValueError) before\nanything is allocated, with the CLI's estimate (run_memory, exact_denoise_extra).")
        .def("update",
             [](tracker_g& g, py::handle images, py::handle labels, std::optional<std::int64_t> given) {
                 const std::optional<std::uint64_t> first_row = row_arg(given);
                 // Rows in conversion errors count from n (read again under the lock for the update
                 // itself, so a concurrent update cannot make the Monte-Carlo keys stale).
                 const std::uint64_t first = first_row ? *first_row : locked(g, [](const alignment_tracker& t) { return t.n(); });
                 held_batch b = as_batch(images, "images", first);
                 held_labels l = as_labels(labels, first);
                 locked_mut(g, [&](alignment_tracker& t) {
                     if (first_row) t.update(b.view, l.view, *first_row);
                     else t.update(b.view, l.view);
                 });
             },
             py::arg("images"), py::arg("labels"), py::arg("first_row") = py::none(),
             "Add a batch of images (rows = samples) and class ids. first_row (default: n) is the global row index\n"
             "of the batch's first row (Monte-Carlo noise is keyed by it). Releases the GIL; strong guarantee.")
        .def("merge", &merge_guarded<alignment_tracker>, py::arg("other"), "Add another tracker of the same configuration over other rows (Chan's rule); strong guarantee.")
        .def("report", [](tracker_g& g) { return locked_mut(g, [](alignment_tracker& t) { return t.report(); }); },
             "Current curves; remembers them for the next report's change (this is part of the state).")
        .def("noise_expectations",
             [](const tracker_g& g, std::size_t i) {
                 return locked(g, [&](const alignment_tracker& t) {
                     if (i >= t.options().noises.size())
                         throw std::out_of_range("noise index " + std::to_string(i) + " out of range");
                     return t.noise_expectations(i);
                 });
             },
             py::arg("i"), "NoiseMoments (Bs, G sums) of the i-th configured noise: closed form, or the Monte-Carlo estimate.")
        .def_property_readonly("moments",
                               [](const tracker_g& g) {
                                   return locked(g, [](const alignment_tracker& t) { return std::make_unique<moments_g>(moment_accumulator(t.moments())); });
                               },
                               "A copy of the clean moments (MomentAccumulator).")
        .def_property_readonly("classes", [](const tracker_g& g) { return locked(g, [](const alignment_tracker& t) { return t.options().classes; }); }, "C, the number of classes.")
        .def_property_readonly("noises", [](const tracker_g& g) {
            std::vector<std::string> v;
            for (const noise_spec& s : locked(g, [](const alignment_tracker& t) { return t.options().noises; })) v.push_back(to_string(s));
            return v;
        }, "The configured noise specs (canonical text), in report order.")
        .def("__repr__", [](const tracker_g& g) {
            return locked(g, [](const alignment_tracker& t) {
                return "AlignmentTracker(dim=" + std::to_string(t.dim()) + ", classes=" + std::to_string(t.options().classes) +
                       ", noises=" + std::to_string(t.options().noises.size()) + ", n=" + std::to_string(t.n()) + ")";
            });
        });
    add_state_methods<alignment_tracker>(tr, "AlignmentTracker");
}

}  // namespace recalign::python
