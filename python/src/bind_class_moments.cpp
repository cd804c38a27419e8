// ClassMoments: per-class counts and means, the O(D·C) label statistics (stats/class_moments.hpp).
#include <string>

#include "common.hpp"
#include "recalign/stats/class_moments.hpp"

namespace recalign::python {

namespace {

using class_moments_g = guarded<class_moments>;

void update_class_moments(class_moments_g& g, py::handle x, py::handle labels, std::int64_t given) {
    const std::uint64_t first_row = row_arg(given);
    held_batch b = as_batch(x, "batch", first_row);
    held_labels l = as_labels(labels, first_row);
    locked_mut(g, [&](class_moments& s) { s.update(b.view, l.view, first_row); });
}

}  // namespace

void bind_class_moments(py::module_& m) {
    py::class_<class_moments_g> cls(m, "ClassMoments", R"doc(
Per-class counts n_c and means μ_c of rows labelled with class ids in [0, classes): C x D
values, never D x D. For one-hot targets they give the cross statistics exactly (MATH.md §1):
uncentered Sxy[:, c] = n_c μ_c, Syy = diag(n_c); centered Sxy[:, c] = n_c (μ_c − μ),
Syy = diag(n_c) − n nᵀ/N -- what MomentAccumulator(dim, classes).cross() gives, at the memory
of a sketch run.

    cm = ClassMoments(784, 10)
    cm.update(images, labels)                 # per minibatch; GIL released
    cm.merge(other); cm.cross("centered"); pickle.dumps(cm)

Batches as for MomentAccumulator (float32/float64/uint8 read in place, other dimensions
flattened); labels are integer class ids, one per row. A bad batch (wrong width, NaN/Inf,
label out of range, label count) raises ValueError naming the row and changes nothing.)doc");
    cls.def(py::init([](std::int64_t dim, std::int64_t classes) {
                class_moments_options o;
                o.dim = size_arg(dim, "dim");
                o.classes = size_arg(classes, "classes");
                return std::make_unique<class_moments_g>(class_moments(o));
            }),
            py::arg("dim"), py::arg("classes"), "dim: D (row width). classes: C (labels lie in [0, C)).")
        .def("update", &update_class_moments, py::arg("x"), py::arg("labels"), py::arg("first_row") = 0,
             "Add a batch (rows = samples) and its class ids. first_row only labels error messages.\n"
             "Releases the GIL during the computation. Strong guarantee: a rejected batch changes nothing.")
        .def("merge", &merge_guarded<class_moments>, py::arg("other"),
             "Chan's rule per class. Another dim or class count raises ValueError before any change.")
        .def_property_readonly("classes", [](const class_moments_g& g) { return locked(g, [](const class_moments& s) { return s.classes(); }); },
                               "C: the number of classes.")
        .def_property_readonly("counts",
                               [](const class_moments_g& g) {
                                   const std::vector<std::uint64_t> c =
                                       locked(g, [](const class_moments& s) { return s.counts(); });
                                   return py::array_t<std::uint64_t>(static_cast<py::ssize_t>(c.size()), c.data());
                               },
                               "n_c, one per class (uint64 array of length C; a fresh copy).")
        .def_property_readonly("means", [](const class_moments_g& g) { return to_numpy(locked(g, [](const class_moments& s) { return s.means(); })); },
                               "C x D class means (float64; a row of zeros for a class not seen yet).")
        .def_property_readonly("mean", [](const class_moments_g& g) { return to_numpy(locked(g, [](const class_moments& s) { return s.mean(); })); },
                               "Mean of every row seen (length D; zeros when empty).")
        .def("cross", [](const class_moments_g& g, const std::string& c) {
                 const centering ce = parse_centering(c);
                 return locked(g, [&](const class_moments& s) { return s.cross(ce); });
             },
             py::arg("center") = "uncentered",
             "CrossMoments (Sxy: D x C, Syy: C x C) of the one-hot targets, 'uncentered' or 'centered'.")
        .def("__repr__", [](const class_moments_g& g) {
            return locked(g, [](const class_moments& s) {
                return "ClassMoments(dim=" + std::to_string(s.dim()) + ", classes=" + std::to_string(s.classes()) +
                       ", n=" + std::to_string(s.n()) + ")";
            });
        });
    add_state_methods<class_moments>(cls, "ClassMoments");
}

}  // namespace recalign::python
