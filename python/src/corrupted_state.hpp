// The Monte-Carlo accumulators bound to Python (MonteCarloNoise: monte_carlo_noise, bind_align.cpp;
// MonteCarloSketch: monte_carlo_sketch, bind_monte_carlo_sketch.cpp) share one verb set: the state
// travels with what its corruption is made from, a built-in spec (rebuilt on load and unpickling)
// or a Python function (pickled by reference with the state), and bind_corrupted_verbs binds
// update, merge, the properties, bytes, copy and pickling once for both.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>

#include "common.hpp"

namespace recalign::python {

template <class Acc>
struct corrupted {
    std::optional<noise_spec> spec;
    image_shape shape;
    std::shared_ptr<py::object> python;  // the Python corruption, if any (deleted with the GIL)
    Acc acc;
    corrupted(std::optional<noise_spec> s, const image_shape& sh, std::shared_ptr<py::object> fn, Acc&& a)
        : spec(std::move(s)), shape(sh), python(std::move(fn)), acc(std::move(a)) {}
    corrupted(const corrupted&) = default;
    void merge(const corrupted& o) { acc.merge(o.acc); }
};
template <class Acc>
using corrupted_g = guarded<corrupted<Acc>>;

inline std::optional<noise_spec> optional_spec(py::handle h) {
    if (h.is_none()) return std::nullopt;
    return spec_of(h);
}

// The model a constructor is given: a built-in spec's draws (> 0), seed and canonical text, or
// the draws, seed and name given with a Python corrupt function. `what` names the class in errors.
struct corrupted_model {
    std::size_t draws = 0;
    std::uint64_t seed = 0;
    std::string name;
};
inline corrupted_model model_of(std::optional<noise_spec>& spec, const py::object& corrupt,
                                std::optional<std::int64_t> draws_arg, std::optional<std::uint64_t> seed,
                                const std::string& name, const char* what) {
    const std::string w(what);
    const std::optional<std::size_t> draws =
        draws_arg ? std::optional<std::size_t>(size_arg(*draws_arg, "draws")) : std::nullopt;
    if (spec) {
        if (!corrupt.is_none()) throw std::invalid_argument(w + ": give a spec or corrupt, not both");
        // draws= and seed= fill what the spec leaves unset; they may not contradict it.
        if (draws && spec->draws && *draws != spec->draws)
            throw std::invalid_argument(w + ": the spec says draws=" + std::to_string(spec->draws) + " but draws=" +
                                        std::to_string(*draws) + " was given");
        if (seed && spec->seed && *seed != spec->seed)
            throw std::invalid_argument(w + ": the spec says seed=" + std::to_string(spec->seed) + " but seed=" +
                                        std::to_string(*seed) + " was given");
        if (draws) spec->draws = *draws;
        if (seed) spec->seed = *seed;
        if (spec->draws == 0)
            throw std::invalid_argument(w + ": the spec needs draws > 0 (e.g. '...,draws=16', or draws=16)");
        validate(*spec);
        return {spec->draws, spec->seed, to_string(*spec)};
    }
    if (corrupt.is_none()) throw std::invalid_argument(w + ": give a noise spec or a corrupt function");
    if (name.empty()) throw std::invalid_argument(w + ": a corrupt function needs a name (it identifies the model)");
    return {draws.value_or(16), seed.value_or(0), name};
}

// The state with its corruption set: the spec's (whose canonical text must be the state's name)
// or the Python function's; with neither, update() raises. `what` names the class in errors.
template <class Acc>
std::unique_ptr<corrupted_g<Acc>> make_corrupted(Acc&& a, std::optional<noise_spec> spec, const image_shape& shape,
                                                 py::object corrupt, const char* what) {
    std::shared_ptr<py::object> fn;
    if (spec) {
        if (!corrupt.is_none()) throw std::invalid_argument(std::string(what) + ": give a spec or corrupt, not both");
        if (a.options().name != to_string(*spec))
            throw std::invalid_argument(std::string(what) + " state is of noise '" + a.options().name + "', not '" +
                                        to_string(*spec) + "'");
        a.set_corrupter(make_corrupter(*spec, shape));
    } else if (!corrupt.is_none()) {
        if (!PyCallable_Check(corrupt.ptr())) throw std::invalid_argument("corrupt must be callable");
        a.set_corrupter(python_corrupter(corrupt, a.options().name));
        fn = shared_callable(corrupt);
    }
    return std::make_unique<corrupted_g<Acc>>(corrupted<Acc>(std::move(spec), shape, std::move(fn), std::move(a)));
}

template <class Acc>
std::string corrupted_bytes(const corrupted_g<Acc>& g) {
    return locked(g, [](const corrupted<Acc>& s) { return checkpoint::to_bytes(s.acc); });
}

template <class Acc>
std::unique_ptr<corrupted_g<Acc>> corrupted_from_bytes(py::handle data, std::optional<noise_spec> spec,
                                                       const image_shape& shape, py::object corrupt, const char* source,
                                                       const char* what) {
    const held_bytes held = readonly_bytes(data);
    Acc a = [&] {
        py::gil_scoped_release nogil;
        return checkpoint::from_bytes<Acc>(held.view, source);
    }();
    return make_corrupted(std::move(a), std::move(spec), shape, std::move(corrupt), what);
}

// What the class's own docs say per verb: update(), merge(), and what a state without its
// corruption can still do (from_bytes).
struct corrupted_docs {
    const char* update;
    const char* merge;
    const char* without_corruption;
};

template <class Acc>
void bind_corrupted_verbs(py::class_<corrupted_g<Acc>>& cls, const char* what, const corrupted_docs& docs) {
    using state = corrupted<Acc>;
    using g_t = corrupted_g<Acc>;
    const std::string bare = std::string("The corruption is code, not state: give the same spec (and image shape) or "
                                         "corrupt function again.\n") + docs.without_corruption;
    cls.def("update",
            [](g_t& g, py::handle x, std::optional<std::int64_t> given) {
                const std::optional<std::uint64_t> first_row = row_arg(given);
                // Rows in conversion errors count from n, as the C++ update's own errors do.
                const std::uint64_t first = first_row ? *first_row : locked(g, [](const state& s) { return s.acc.n(); });
                held_batch b = as_batch(x, "batch", first);
                locked_mut(g, [&](state& s) {
                    if (first_row) s.acc.update(b.view, *first_row);
                    else s.acc.update(b.view);
                });
            },
            py::arg("x"), py::arg("first_row") = py::none(), docs.update)
        .def("merge", &merge_guarded<state>, py::arg("other"), docs.merge)
        .def_property_readonly("spec", [](const g_t& g) { return locked(g, [](const state& s) { return s.spec; }); },
                               "The NoiseSpec, or None for a Python corruption.")
        .def_property_readonly("name", [](const g_t& g) { return locked(g, [](const state& s) { return s.acc.options().name; }); },
                               "The model's name (the spec's canonical text, or the name given with corrupt).")
        .def_property_readonly("n", [](const g_t& g) { return locked(g, [](const state& s) { return s.acc.n(); }); }, "Samples seen.")
        .def_property_readonly("dim", [](const g_t& g) { return locked(g, [](const state& s) { return s.acc.dim(); }); }, "D, the row width.")
        .def_property_readonly("empty", [](const g_t& g) { return locked(g, [](const state& s) { return s.acc.empty(); }); },
                               "True before the first sample.")
        .def_property_readonly("batches", [](const g_t& g) { return locked(g, [](const state& s) { return s.acc.batches(); }); },
                               "Batches seen (the corruption's key counts them).")
        .def("to_bytes", [](const g_t& g) { return py::bytes(corrupted_bytes(g)); },
             "The state as checkpoint bytes (the corruption itself is not included: give it again to from_bytes).")
        .def_static("from_bytes",
                    [what](py::handle b, py::object spec, py::object corrupt, py::object shape, const std::string& layout) {
                        return corrupted_from_bytes<Acc>(b, optional_spec(spec), make_shape(shape, layout),
                                                         corrupt, "<bytes>", what);
                    },
                    py::arg("data"), py::arg("spec") = py::none(), py::kw_only(), py::arg("corrupt") = py::none(),
                    py::arg("shape") = py::none(), py::arg("layout") = "hwc", bare.c_str())
        .def("_write_to",
             [](const g_t& g, const py::object& write) {
                 locked(g, [&](const state& s) { write_state_to_python(s.acc, write); });
             },
             py::arg("write"), "to_bytes()'s bytes handed to write(memoryview) in pieces (checkpoints in parts).")
        .def_property_readonly("_framed_size",
                               [](const g_t& g) { return locked(g, [](const state& s) { return checkpoint::framed_size(s.acc); }); },
                               "len(to_bytes()), without the bytes.")
        .def_static("_load_range",
                    [what](int fd, std::uint64_t offset, std::uint64_t size, const std::string& source, py::object spec,
                           py::object corrupt, py::object shape, const std::string& layout) {
                        Acc a = [&] {
                            py::gil_scoped_release nogil;
                            return checkpoint::load_range<Acc>(fd, offset, size, source);
                        }();
                        return make_corrupted(std::move(a), optional_spec(spec), make_shape(shape, layout), corrupt, what);
                    },
                    py::arg("fd"), py::arg("offset"), py::arg("size"), py::arg("source"), py::arg("spec") = py::none(),
                    py::kw_only(), py::arg("corrupt") = py::none(), py::arg("shape") = py::none(),
                    py::arg("layout") = "hwc", "from_bytes() of bytes [offset, offset + size) of the open file fd.")
        .def("save", [](const g_t& g, const std::string& path) { locked(g, [&](const state& s) { checkpoint::save_file(path, s.acc); }); },
             py::arg("path"), "Atomic checkpoint: written to a temporary file in the same directory, fsynced, renamed.")
        .def_static("load",
                    [what](const std::string& path, py::object spec, py::object corrupt, py::object shape, const std::string& layout) {
                        Acc a = [&] {
                            py::gil_scoped_release nogil;
                            return checkpoint::load_file<Acc>(path);
                        }();
                        return make_corrupted(std::move(a), optional_spec(spec), make_shape(shape, layout), corrupt, what);
                    },
                    py::arg("path"), py::arg("spec") = py::none(), py::kw_only(), py::arg("corrupt") = py::none(),
                    py::arg("shape") = py::none(), py::arg("layout") = "hwc",
                    ("A checkpoint file written by save(); errors name the file and byte offset.\n" + bare).c_str())
        .def("copy", [](const g_t& g) { return locked(g, [](const state& s) { return std::make_unique<g_t>(state(s)); }); },
             "An independent copy of the state (with its corruption).")
        .def(py::pickle(
            [](const g_t& g) {
                auto [spec, shape, fn] = locked(g, [](const state& s) { return std::make_tuple(s.spec, s.shape, s.python); });
                return py::make_tuple(py::bytes(corrupted_bytes(g)), spec ? py::object(py::str(to_string(*spec))) : py::none(),
                                      shape.height, shape.width, shape.channels, image_layout_name(shape.layout),
                                      fn ? *fn : py::none());
            },
            [what](const py::tuple& t) {
                if (t.size() != 7) throw std::invalid_argument(std::string("bad ") + what + " pickle state");
                image_shape sh;
                sh.height = t[2].cast<std::size_t>();
                sh.width = t[3].cast<std::size_t>();
                sh.channels = t[4].cast<std::size_t>();
                sh.layout = t[5].cast<std::string>() == "chw" ? image_layout::chw : image_layout::hwc;
                std::optional<noise_spec> spec;
                if (!t[1].is_none()) spec = parse_noise_spec(t[1].cast<std::string>());
                return corrupted_from_bytes<Acc>(t[0], std::move(spec), sh, t[6], "<pickle>", what);
            }));
}

}  // namespace recalign::python
