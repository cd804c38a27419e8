// MomentAccumulator, spectra and the top/bottom subspace projector.
#include <optional>
#include <string>

#include "common.hpp"
#include "recalign/spectral/eigen.hpp"
#include "recalign/spectral/spectrum.hpp"
#include "recalign/spectral/statistics.hpp"
#include "recalign/spectral/subspace.hpp"

namespace recalign::python {

namespace {

target_mode parse_targets(const std::string& s) {
    if (s == "none") return target_mode::none;
    if (s == "class_ids" || s == "labels") return target_mode::class_ids;
    if (s == "dense") return target_mode::dense;
    throw std::invalid_argument("targets must be 'none', 'class_ids' or 'dense', got '" + s + "'");
}
const char* targets_name(target_mode t) {
    return t == target_mode::none ? "none" : t == target_mode::class_ids ? "class_ids" : "dense";
}

using moments_g = guarded<moment_accumulator>;

void update_moments(moments_g& g, py::handle x, py::handle y, std::int64_t given) {
    const std::uint64_t first_row = row_arg(given);
    held_batch b = as_batch(x, "batch", first_row);
    if (y.is_none()) {
        locked_mut(g, [&](moment_accumulator& m) { m.update(b.view, first_row); });
        return;
    }
    const target_mode mode = locked(g, [](const moment_accumulator& m) { return m.options().targets; });
    if (mode == target_mode::dense) {
        held_batch t = as_batch(y, "targets", first_row);
        locked_mut(g, [&](moment_accumulator& m) { m.update(b.view, target_view::dense_rows(t.view), first_row); });
    } else {
        held_labels l = as_labels(y, first_row);
        locked_mut(g, [&](moment_accumulator& m) { m.update(b.view, l.view, first_row); });
    }
}

statistic parse_statistic(const std::string& s) {
    if (s == "full_spectrum") return statistic::full_spectrum;
    if (s == "second_moment") return statistic::second_moment;
    if (s == "targets") return statistic::targets;
    throw std::invalid_argument("unknown statistic '" + s + "' (expected full_spectrum, second_moment or targets)");
}

}  // namespace

void bind_stats(py::module_& m) {
    py::class_<cross_moments>(m, "CrossMoments", "Cross statistics of the targets (Sxy: D x C, Syy: C x C).")
        .def_property_readonly("center", [](const cross_moments& c) { return centering_name(c.center); }, "'uncentered' or 'centered'.")
        .def_readonly("n", &cross_moments::n, "Samples summed over.")
        .def_property_readonly("sxy", [](const cross_moments& c) { return to_numpy(c.sxy); }, "Sxy = Σ x yᵀ (D x C; centered: Σ (x − x̄)(y − ȳ)ᵀ), a sum over samples.")
        .def_property_readonly("syy", [](const cross_moments& c) { return to_numpy(c.syy_dense()); },
                               "Syy (C x C), formed on request (class ids keep only the counts).")
        .def_property_readonly("class_counts", [](const cross_moments& c) -> py::object {
                                   if (!c.one_hot()) return py::none();
                                   return to_numpy(c.class_counts);
                               }, "n_c for class ids (Syy = diag(n_c), minus n nᵀ/N when centered), else None.");

    py::class_<moments_g> cls(m, "MomentAccumulator", R"doc(
Exact streaming first and second moments of inputs x (dimension D) and optionally targets
(class ids, one-hot implied, or dense rows of width `classes`): n, means, centered scatters
Mxx, Mxy, Myy, merged with Chan's rule (MATH.md §1).

    acc = MomentAccumulator(784, classes=10)          # class ids
    acc.update(images, labels)                         # per minibatch; GIL released
    acc.merge(other); acc.to_bytes(); pickle.dumps(acc)

Batches: NumPy float32/float64/uint8 C-contiguous arrays (or CPU torch tensors) are read
in place; anything else is converted once. Rows = shape[0], the other dimensions are
flattened. A bad batch (wrong width, NaN/Inf, label out of range, non-numeric) raises
ValueError naming the row and leaves the state unchanged.)doc");
    cls.def(py::init([](std::int64_t dim, std::int64_t classes, std::optional<std::string> targets, bool float32_kernels) {
                moment_options o;
                o.dim = size_arg(dim, "dim");
                o.classes = size_arg(classes, "classes");
                o.targets = targets ? parse_targets(*targets) : (classes > 0 ? target_mode::class_ids : target_mode::none);
                o.float32_kernels = float32_kernels;
                return std::make_unique<moments_g>(moment_accumulator(o));
            }),
            py::arg("dim"), py::arg("classes") = 0, py::arg("targets") = py::none(), py::arg("float32_kernels") = false,
            "dim: D. classes: C (0 = no targets). targets: 'class_ids' (default when classes > 0), 'dense' or 'none'.\n"
            "float32_kernels: opt-in single-precision in-batch scatter for float32 input (about 2x faster). uint8 input\n"
            "(no targets or class ids) always takes SSYRK on the integers x - 128, exact within each batch.")
        .def("update", &update_moments, py::arg("x"), py::arg("y") = py::none(), py::arg("first_row") = 0,
             "Add a batch (rows = samples) and, if configured, its targets. first_row only labels error messages.\n"
             "Releases the GIL during the computation. Strong guarantee: a rejected batch changes nothing.")
        .def("merge", &merge_guarded<moment_accumulator>, py::arg("other"),
             "Chan's parallel rule. Incompatible states raise ValueError before any change.")
        .def_property_readonly("classes", [](const moments_g& g) { return locked(g, [](const moment_accumulator& a) { return a.classes(); }); }, "C (0 without targets).")
        .def_property_readonly("targets", [](const moments_g& g) { return std::string(targets_name(locked(g, [](const moment_accumulator& a) { return a.options().targets; }))); }, "'none', 'class_ids' or 'dense'.")
        .def_property_readonly("has_targets", [](const moments_g& g) { return locked(g, [](const moment_accumulator& a) { return a.has_targets(); }); }, "True when targets are accumulated (classes > 0).")
        .def("mean_x", [](const moments_g& g) { return to_numpy(locked(g, [](const moment_accumulator& a) { return a.mean_x(); })); }, "Mean of the rows x (D,), exact (Chan's update in double precision); zeros when empty.")
        .def("mean_y", [](const moments_g& g) { return to_numpy(locked(g, [](const moment_accumulator& a) { return a.mean_y(); })); }, "Mean of the targets (C,): class frequencies for class ids.")
        .def("sxx", [](const moments_g& g, const std::string& c) {
                 const centering ce = parse_centering(c);
                 return to_numpy(locked(g, [&](const moment_accumulator& a) { return a.sxx(ce); }));
             }, py::arg("center") = "centered", "D x D second moment: centered scatter Mxx or uncentered Sxx = X Xᵀ.")
        .def("sxy", [](const moments_g& g, const std::string& c) {
                 const centering ce = parse_centering(c);
                 return to_numpy(locked(g, [&](const moment_accumulator& a) { return a.sxy(ce); }));
             }, py::arg("center") = "centered", "D x C cross moment Σ x yᵀ (centered: Σ (x − x̄)(y − ȳ)ᵀ), a sum over samples.")
        .def("syy", [](const moments_g& g, const std::string& c) {
                 const centering ce = parse_centering(c);
                 return to_numpy(locked(g, [&](const moment_accumulator& a) { return a.syy(ce); }));
             }, py::arg("center") = "centered", "C x C target moment Σ y yᵀ (centered: Σ (y − ȳ)(y − ȳ)ᵀ), a sum over samples.")
        .def("cross", [](const moments_g& g, const std::string& c) {
                 const centering ce = parse_centering(c);
                 return locked(g, [&](const moment_accumulator& a) { return a.cross(ce); });
             }, py::arg("center") = "uncentered", "CrossMoments (Sxy, Syy) in this centering.")
        .def("diag_xx", [](const moments_g& g, const std::string& c) {
                 const centering ce = parse_centering(c);
                 return to_numpy(locked(g, [&](const moment_accumulator& a) { return a.diag_xx(ce); }));
             }, py::arg("center") = "centered",
             "diag(Sxx) (D,) without forming the D x D matrix: centered, n times the per-feature variance\n"
             "(divide by n for sklearn's var_, by n - 1 for the unbiased one); uncentered, the sums of squares.")
        .def("trace_xx", [](const moments_g& g, const std::string& c) {
                 const centering ce = parse_centering(c);
                 return locked(g, [&](const moment_accumulator& a) { return a.trace_xx(ce); });
             }, py::arg("center") = "centered", "tr(Sxx) without forming the matrix: n times the total variance when centered.")
        .def("__repr__", [](const moments_g& g) {
            return locked(g, [](const moment_accumulator& a) {
                return "MomentAccumulator(dim=" + std::to_string(a.dim()) + ", classes=" + std::to_string(a.classes()) +
                       ", targets='" + targets_name(a.options().targets) + "', n=" + std::to_string(a.n()) + ")";
            });
        });
    add_state_methods<moment_accumulator>(cls, "MomentAccumulator");

    py::class_<spectrum>(m, "Spectrum", "Eigenvalues (descending) and orthonormal basis (dim x k) of a second moment, from any route.")
        .def_property_readonly("method", [](const spectrum& s) { return route_name(s.method); },
                               "Route: 'exact', 'fd' (Frequent Directions) or 'nystrom'.")
        .def_property_readonly("center", [](const spectrum& s) { return centering_name(s.center); }, "'uncentered' or 'centered': the second moment's centering.")
        .def_readonly("n", &spectrum::n, "Samples the second moment sums over.")
        .def_readonly("dim", &spectrum::dim, "D, the row width.")
        .def_property_readonly("eigenvalues", [](const spectrum& s) { return to_numpy(s.eigenvalues); }, "Eigenvalues (descending, length rank) of the scatter (sums over samples: divide by n, or n − 1, for variances); negative rounding clipped to 0 (see clipped).")
        .def_property_readonly("basis", [](const spectrum& s) { return to_numpy(s.basis); }, "Eigenvectors as columns (D x rank), orthonormal; sign: the largest entry of each column is positive.")
        .def_readonly("total", &spectrum::total, "Trace of the second moment, tracked exactly by every route (the denominator of explained).")
        .def_property_readonly("explained", [](const spectrum& s) { return to_numpy(s.explained); },
                               "Cumulative eigenvalues / total.")
        .def_readonly("error_bound", &spectrum::error_bound, "FD: guaranteed bound on ‖C − Ĉ‖₂ (the shrinkage); NaN on other routes.")
        .def_readonly("error_estimate", &spectrum::error_estimate, "Nyström: a-posteriori estimate of ‖C − Ĉ‖ from the probes (an estimate, not a bound); NaN on other routes.")
        .def_property_readonly("status", [](const spectrum& s) { return solver_status_name(s.status); },
                               "'converged', 'not_converged' or 'breakdown' (the decomposition's outcome).")
        .def_readonly("clipped", &spectrum::clipped,
                      "How many negative eigenvalues (rounding: a second moment is PSD) finish() set to 0.")
        .def_readonly("most_negative", &spectrum::most_negative,
                      "The most negative eigenvalue finish() clipped (0.0 when none): the rounding's size.")
        .def_readonly("ritz", &spectrum::ritz,
                      "True for a verified sketch's spectrum (ritz_spectrum): its eigenvalues are the Ritz values of the "
                      "returned basis, each the exact second moment along its direction; False for a sketch's own "
                      "estimates and on the exact route.")
        .def_property_readonly("values_exact", &spectrum::values_exact,
                               "True when every eigenvalue is exact for its basis direction: the exact route, or "
                               "Ritz values (ritz). SubspaceProjector's k and explained are then exact for the "
                               "directions it projects on.")
        .def_property_readonly("rank", &spectrum::rank, "Eigenpairs held: D (exact, complete), the requested top k, or the sketch's rank.")
        .def_property_readonly("complete", &spectrum::complete, "True when all D eigenpairs are here (exact route).")
        .def("k_for_fraction", [](const spectrum& s, double f) { return k_for_fraction(s.eigenvalues, s.total, f); },
             py::arg("fraction"), "Smallest k whose eigenvalues explain at least `fraction` of the total.")
        .def("variances", [](const spectrum& s, int ddof) {
                 if (ddof != 0 && ddof != 1) throw std::invalid_argument("ddof must be 0 or 1, got " + std::to_string(ddof));
                 if (s.n <= static_cast<std::uint64_t>(ddof))
                     throw std::invalid_argument("variances(ddof=" + std::to_string(ddof) + ") needs more than " +
                                                 std::to_string(ddof) + " samples, the spectrum has n = " + std::to_string(s.n));
                 vector_t v = s.eigenvalues / static_cast<double>(s.n - static_cast<std::uint64_t>(ddof));
                 return to_numpy(v);
             },
             py::arg("ddof") = 1,
             "Explained variance per sample of each eigenpair: eigenvalues / (n - ddof) (ddof=1: the unbiased "
             "sample covariance's eigenvalues, scikit-learn's explained_variance_; ddof=0: the population "
             "covariance's). On a centered spectrum these are variances; on an uncentered one, second moments "
             "per sample. Exact on the exact route; a sketch's eigenvalues carry its error_bound / error_estimate "
             "divided by the same n - ddof.")
        .def("__repr__", [](const spectrum& s) {
            return std::string("Spectrum(method='") + route_name(s.method) + "', center='" + centering_name(s.center) + "', n=" + std::to_string(s.n) +
                   ", dim=" + std::to_string(s.dim) + ", rank=" + std::to_string(s.rank()) + ")";
        });

    py::class_<statistics>(m, "Statistics", R"doc(
Finished statistics of one state, whatever the route: the spectrum (all D eigenpairs on the
exact route, the top k of a sketch with its error information), the mean of the rows, the
D x D second moment (exact route only) and the label statistics (when labels were read).
The analyses (alignment_curve, tradeoff, denoising_alignment, noise_impact,
SubspaceProjector.from_statistics) read only this; make it once with acc.finish(center)
(MomentAccumulator) or sketch.finish(labels) and pass it to every analysis: they share one
eigendecomposition.)doc")
        .def_property_readonly("method", [](const statistics& s) { return route_name(s.method); }, "Route: 'exact', 'fd' or 'nystrom'.")
        .def_property_readonly("center", [](const statistics& s) { return centering_name(s.center); }, "'uncentered' or 'centered'.")
        .def_readonly("n", &statistics::n, "Samples the statistics describe.")
        .def_readonly("dim", &statistics::dim, "D, the row width.")
        .def_property_readonly("classes", &statistics::classes, "C (0 without labels).")
        .def_readonly("spectrum", &statistics::spec, "The Spectrum.")
        .def_property_readonly("mean", [](const statistics& s) { return to_numpy(s.mean); }, "Mean of the rows (D,).")
        .def_property_readonly("second_moment",
                               [](const statistics& s) -> py::object {
                                   if (!s.second_moment) return py::none();
                                   return to_numpy(*s.second_moment);
                               },
                               "Sxx (D x D) in this centering, or None (sketch routes).")
        .def_property_readonly("cross",
                               [](const statistics& s) -> py::object {
                                   if (!s.cross) return py::none();
                                   return py::cast(*s.cross);
                               },
                               "CrossMoments (Sxy, Syy), or None without labels.")
        .def("provides", [](const statistics& s, const std::string& what) { return s.provides(parse_statistic(what)); },
             py::arg("what"), "'full_spectrum', 'second_moment' or 'targets'.")
        .def("__repr__", [](const statistics& s) {
            return std::string("Statistics(method='") + route_name(s.method) + "', center='" + centering_name(s.center) +
                   "', n=" + std::to_string(s.n) + ", dim=" + std::to_string(s.dim) + ", classes=" +
                   std::to_string(s.classes()) + ", rank=" + std::to_string(s.spec.rank()) + ")";
        });
    m.def("make_statistics",
          [](const spectrum& s, py::object mean, std::optional<cross_moments> cross, py::object second_moment) {
              std::optional<matrix_t> sxx;
              if (!second_moment.is_none()) sxx = to_matrix(second_moment, "second_moment");
              return make_statistics(s, to_vector(mean, "mean"), std::move(cross), std::move(sxx));
          },
          py::arg("spectrum"), py::arg("mean"), py::arg("cross") = py::none(), py::arg("second_moment") = py::none(),
          "Statistics from their parts (checked to describe one state: dimension, centering, n).");
    cls.def("finish", [](const moments_g& g, const std::string& c, std::size_t top) {
                if (c == "inputs")  // MATH.md §8: inputs centered, targets raw
                    return locked(g, [&](const moment_accumulator& a) {
                        if (top) throw std::invalid_argument("finish: center='inputs' takes the complete spectrum (top = 0)");
                        return finish(a, centering::centered, centering::uncentered);
                    });
                const centering ce = parse_centering(c);
                return locked(g, [&](const moment_accumulator& a) { return finish(a, ce, top); });
            },
            py::arg("center") = "uncentered", py::arg("top") = 0,
            "Finished statistics in this centering: Sxx, its complete eigendecomposition, the mean and (with\n"
            "targets) Sxy, Syy. 'uncentered' is the paper's alignment code; 'centered' is PCA; 'inputs' centers\n"
            "the inputs and leaves the targets raw (the authors' published code, measure='published'). top = k > 0 keeps\n"
            "only the top k eigenpairs (LAPACK dsyevr subset, much cheaper at large D); the analyses that need the\n"
            "complete spectrum (tradeoff, denoising, noise impact) then refuse.");

    m.def("exact_spectrum", [](const moments_g& g, const std::string& c) {
              const centering ce = parse_centering(c);
              return locked(g, [&](const moment_accumulator& a) { return exact_spectrum(a, ce); });
          },
          py::arg("moments"), py::arg("center") = "centered", "Full eigendecomposition of the accumulator's Sxx.");

    m.def("sym_eigen", [](py::handle a) {
              matrix_t mat = to_matrix(a, "matrix");
              eigen_result r = [&] { py::gil_scoped_release nogil; return sym_eigen(mat); }();
              return py::make_tuple(to_numpy(r.values), to_numpy(r.vectors), r.info);
          },
          py::arg("a"), "(values descending, vectors as columns, LAPACK info) of a symmetric matrix (upper triangle read).");

    py::class_<subspace_projector>(m, "SubspaceProjector", R"doc(
Projection of rows onto the top principal subspace span(U_k) or its orthogonal complement
(the paper's Figures 1, 4, 9): top: U Uᵀ(x − μ) + μ; bottom: (x − μ) − U Uᵀ(x − μ) + μ,
with k the smallest dimension explaining `fraction` of the variance. Picklable.)doc")
        .def(py::init([](const spectrum& s, py::object mean, double fraction, const std::string& part) {
                 projector_options o;
                 o.fraction = fraction;
                 o.part = parse_subspace_part(part);
                 vector_t mu = mean.is_none() ? vector_t{} : to_vector(mean, "mean");
                 return subspace_projector::from_spectrum(s, mu, o);
             }),
             py::arg("spectrum"), py::arg("mean") = py::none(), py::arg("fraction") = 0.75, py::arg("part") = "top",
             "mean: the data mean for a centered spectrum, None for an uncentered one.")
        .def_static("from_statistics",
                    [](const statistics& s, double fraction, const std::string& part) {
                        projector_options o;
                        o.fraction = fraction;
                        o.part = parse_subspace_part(part);
                        return subspace_projector::from_statistics(s, o);
                    },
                    py::arg("statistics"), py::arg("fraction") = 0.75, py::arg("part") = "top",
                    "The projector of finished statistics (their spectrum; their mean when centered).")
        .def_property_readonly("part", [](const subspace_projector& p) { return subspace_part_name(p.part); }, "'top' (span(U_k)) or 'bottom' (its orthogonal complement).")
        .def_readonly("fraction", &subspace_projector::fraction, "The fraction of the total variance k was chosen to explain.")
        .def_readonly("explained", &subspace_projector::explained, "The fraction the top k directions actually explain (>= fraction).")
        .def_readonly("k", &subspace_projector::k, "Dimension of the top subspace.")
        .def_readonly("dim", &subspace_projector::dim, "D, the row width.")
        .def_property_readonly("basis", [](const subspace_projector& p) { return to_numpy(p.basis); }, "U_k (D x k), orthonormal columns.")
        .def_property_readonly("mean", [](const subspace_projector& p) { return to_numpy(p.mean); }, "μ subtracted before and added after projecting (D,; zeros for an uncentered spectrum).")
        .def("project", [](const subspace_projector& p, py::handle x) {
                 held_batch b = as_batch(x, "batch", 0);
                 py::array_t<double> out({static_cast<py::ssize_t>(b.view.rows), static_cast<py::ssize_t>(p.dim)});
                 double* dst = out.mutable_data();
                 {
                     py::gil_scoped_release nogil;
                     p.project(b.view, dst);
                 }
                 return out;
             },
             py::arg("x"), "Projected rows (rows x dim, float64). Releases the GIL.")
        .def(py::pickle(
            [](const subspace_projector& p) {
                return py::make_tuple(static_cast<int>(p.part), p.fraction, p.explained, p.k, p.dim, to_numpy(p.basis),
                                      to_numpy(p.mean));
            },
            [](const py::tuple& t) {
                if (t.size() != 7) throw std::invalid_argument("bad SubspaceProjector pickle state");
                subspace_projector p;
                const int part = t[0].cast<int>();
                if (part != 1 && part != 2) throw std::invalid_argument("bad SubspaceProjector pickle state");
                p.part = static_cast<subspace_part>(part);
                p.fraction = t[1].cast<double>();
                p.explained = t[2].cast<double>();
                p.k = t[3].cast<std::size_t>();
                p.dim = t[4].cast<std::size_t>();
                p.basis = to_matrix(t[5], "basis");
                p.mean = to_vector(t[6], "mean");
                if (p.basis.shape(0) != p.dim || p.basis.shape(1) != p.k || (p.mean.size() != 0 && p.mean.size() != p.dim))
                    throw std::invalid_argument("bad SubspaceProjector pickle state: shapes");
                return p;
            }))
        .def("__repr__", [](const subspace_projector& p) {
            return std::string("SubspaceProjector(part='") + subspace_part_name(p.part) + "', k=" + std::to_string(p.k) +
                   ", dim=" + std::to_string(p.dim) + ", explained=" + std::to_string(p.explained) + ")";
        });
}

}  // namespace recalign::python
