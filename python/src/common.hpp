// Shared pieces of the bindings: NumPy / torch input without copies, xtensor results out as
// NumPy arrays, and the lock every bound object carries (update() runs without the GIL, so
// two Python threads could otherwise reach the same C++ object at once).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <utility>

#include "recalign/align/alignment.hpp"
#include "recalign/align/noise.hpp"
#include "recalign/core/batch.hpp"
#include "recalign/core/serial.hpp"
#include "recalign/core/xt.hpp"
#include "recalign/io/files.hpp"
#include "recalign/stats/moments.hpp"

namespace py = pybind11;

namespace recalign::python {

// A batch view into a NumPy buffer that `keep` holds alive: the caller's array when it is
// already float32/float64/uint8, C-contiguous and native-endian (no copy), otherwise the one
// converted copy. Rows = shape[0], columns = the product of the other dimensions, so image
// batches (N, H, W) or (N, C, H, W) need no reshape.
struct held_batch {
    py::array keep;
    batch_view view;
};
// Throws py::value_error (nothing has been touched yet) for arrays that cannot be used:
// fewer than 2 dimensions, complex values, or elements that do not convert to float64 (the
// first such row, counted from first_row, is named).
held_batch as_batch(py::handle obj, const char* what, std::uint64_t first_row);

// Class ids, one per row: uint8/int32/int64 used in place; other integer types converted to int64.
struct held_labels {
    py::array keep;
    target_view view;
};
held_labels as_labels(py::handle obj, std::uint64_t first_row);

// Results out: always a fresh NumPy array (the C++ result is a temporary).
py::array_t<double> to_numpy(const vector_t& v);
py::array_t<double> to_numpy(const matrix_t& m);
// A matrix that is not needed any more (a temporary, std::move): the array owns it, no copy.
py::array_t<double> to_numpy(matrix_t&& m);
vector_t to_vector(py::handle obj, const char* what);
matrix_t to_matrix(py::handle obj, const char* what);
// The same with `room` zero columns after the array's (an in-place extension's capacity).
matrix_t to_matrix(py::handle obj, const char* what, std::size_t room);

centering parse_centering(const std::string& s);

// A size or count from Python (dim, classes, rank, ...): a negative one is refused by name
// (ValueError: "dim must be >= 0, got -1"), where a std::size_t parameter would make pybind11
// raise TypeError for the whole call (no matching signature). The constructors take such
// parameters as std::int64_t and pass them through this.
inline std::size_t size_arg(std::int64_t v, const char* name) {
    if (v < 0) throw py::value_error(std::string(name) + " must be >= 0, got " + std::to_string(v));
    return static_cast<std::size_t>(v);
}

// A batch's first row from Python (first_row): a negative one refused by name (ValueError), where a
// std::uint64_t parameter made pybind11 raise TypeError listing the whole call, the array with it.
inline std::uint64_t row_arg(std::int64_t v) {
    if (v < 0) throw py::value_error("first_row must be >= 0 (the stream row of the batch's first row), got " + std::to_string(v));
    return static_cast<std::uint64_t>(v);
}
inline std::optional<std::uint64_t> row_arg(std::optional<std::int64_t> v) {
    if (!v) return std::nullopt;
    return row_arg(*v);
}

// Image geometry from Python: shape (H, W[, C]) or None, layout 'hwc' / 'chw' (bind_align.cpp).
image_shape make_shape(const py::object& shape, const std::string& layout);
py::object shape_tuple(const image_shape& s);
// The analyses' alignment_options from Python's measure name and rel_tol (bind_align.cpp).
alignment_options align_options(const std::string& measure, double rel_tol);
// A noise spec given as text or as a NoiseSpec.
noise_spec spec_of(py::handle h);

// A Python corruption function corrupt(clean, key) as a C++ corrupt_fn (bind_align.cpp): called
// with the GIL taken; what it raises becomes std::invalid_argument (ValueError) naming `name`.
corrupt_fn python_corrupter(py::object fn, const std::string& name);
// A Python object C++ may copy and destroy without the GIL (the deleter takes it).
std::shared_ptr<py::object> shared_callable(py::object fn);

// Sets the Python error type(message) with extra attributes: how C++ errors that carry more
// than a message (file_error: .file, .offset; io::lock_error: .file, .pid) reach Python, from
// an exception translator.
inline void set_error(py::handle type, const std::string& message,
                      std::initializer_list<std::pair<const char*, py::object>> attributes) {
    py::object exc = py::reinterpret_borrow<py::object>(type)(py::str(message));
    for (const auto& [name, value] : attributes) exc.attr(name) = value;
    PyErr_SetObject(type.ptr(), exc.ptr());
}

// The lock of a bound object. Every method takes it with the GIL released, so a thread
// holding the lock never waits for the GIL while another waits for the lock with the GIL.
template <class T>
struct guarded {
    T obj;
    mutable std::mutex mu;
    explicit guarded(T&& o) : obj(std::move(o)) {}
};

template <class T, class F>
auto locked(const guarded<T>& g, F&& f) {
    py::gil_scoped_release nogil;
    std::lock_guard<std::mutex> lock(g.mu);
    return f(g.obj);
}
template <class T, class F>
auto locked_mut(guarded<T>& g, F&& f) {
    py::gil_scoped_release nogil;
    std::lock_guard<std::mutex> lock(g.mu);
    return f(g.obj);
}

// Checkpoint bytes: the same framing as files (core/serial.hpp).
template <class T>
py::bytes state_bytes(const guarded<T>& g) {
    const std::string s = locked(g, [](const T& o) { return checkpoint::to_bytes(o); });
    return py::bytes(s);
}

// Checkpoint bytes given as bytes, bytearray, memoryview or any other buffer (copied unless
// bytes, which is immutable); TypeError naming the type otherwise.
inline py::bytes bytes_like(py::handle h) {
    if (PyBytes_Check(h.ptr())) return py::reinterpret_borrow<py::bytes>(h);
    if (!PyObject_CheckBuffer(h.ptr()))
        throw py::type_error("data: expected bytes (or a bytes-like bytearray, memoryview), got " +
                             std::string(py::str(py::type::handle_of(h).attr("__name__"))));
    PyObject* b = PyBytes_FromObject(h.ptr());
    if (!b) throw py::error_already_set();
    return py::reinterpret_steal<py::bytes>(b);
}

// A checkpoint written by Python in parts (recalign.VerifiedAlignment & co.) without a copy of
// itself in memory: a state's bytes handed to the Python callable `write` (a file's write) in
// pieces, each a memoryview of C++ memory (a large array in one piece, no copy), with the GIL
// taken for each call. `each` gives write_to's sink to the caller's serializer.
template <class F>
void write_to_python(const py::object& write, F&& each) {
    each([&write](const char* p, std::size_t n) {
        py::gil_scoped_acquire gil;
        write(py::memoryview::from_memory(p, static_cast<py::ssize_t>(n)));
    });
}
// A library state's checkpoint::to_bytes so (checkpoint::write_to).
template <class T>
void write_state_to_python(const T& obj, const py::object& write) {
    write_to_python(write, [&obj](const checkpoint::detail::sink_fn& sink) { checkpoint::write_to(obj, sink); });
}

// Checkpoint bytes read in place where they cannot change while the GIL is released: bytes, or a
// contiguous memoryview of bytes (a part of a larger state: recalign.VerifiedDenoising.from_bytes
// used to copy each part out of the whole, 10 s of 14 for a 2.1 GB state at 224x224x3);
// anything else is copied (bytes_like). `keep` holds what `view` points into.
struct held_bytes {
    py::object keep;
    std::string_view view;
};
inline held_bytes readonly_bytes(py::handle h) {
    if (PyMemoryView_Check(h.ptr())) {
        const Py_buffer* b = PyMemoryView_GET_BUFFER(h.ptr());
        if (b->obj && PyBytes_Check(b->obj) && PyBuffer_IsContiguous(b, 'C'))
            return {py::reinterpret_borrow<py::object>(h),
                    std::string_view(static_cast<const char*>(b->buf), static_cast<std::size_t>(b->len))};
    }
    py::bytes copy = bytes_like(h);
    const std::string_view view = copy;
    return {std::move(copy), view};
}

template <class T>
std::unique_ptr<guarded<T>> from_state_bytes(py::handle b, const char* source = "<bytes>") {
    const held_bytes held = readonly_bytes(b);  // no copy: it (immutable) outlives the call
    py::gil_scoped_release nogil;
    return std::make_unique<guarded<T>>(checkpoint::from_bytes<T>(held.view, source));
}

// The verbs every accumulator shares in Python: to_bytes/from_bytes, save/load (atomic
// files), pickle through the checkpoint bytes, n/dim/empty, copy.
template <class T, class Cls>
void add_state_methods(Cls& cls, const char* name) {
    using G = guarded<T>;
    cls.def("to_bytes", &state_bytes<T>,
            "The state as checkpoint bytes (64-byte validated header + payload), as save() writes them.")
        .def_static("from_bytes", [](py::handle b) { return from_state_bytes<T>(b); }, py::arg("data"),
                    (std::string("Rebuild a ") + name +
                     " from to_bytes() output. Corrupt or truncated bytes raise recalign.FileError.")
                        .c_str())
        .def("save",
             [](const G& g, const std::string& path) {
                 locked(g, [&](const T& o) { checkpoint::save_file(path, o); });
             },
             py::arg("path"),
             "Atomic checkpoint: written to a temporary file in the same directory, fsynced, renamed.")
        .def_static("load",
                    [](const std::string& path) {
                        py::gil_scoped_release nogil;
                        return std::make_unique<G>(checkpoint::load_file<T>(path));
                    },
                    py::arg("path"), "Load a checkpoint file written by save(); errors name the file and byte offset.")
        .def("_write_to",
             [](const G& g, const py::object& write) {
                 locked(g, [&](const T& o) { write_state_to_python(o, write); });
             },
             py::arg("write"),
             "to_bytes()'s bytes handed to write(memoryview) in pieces, never whole in memory (checkpoints in parts).")
        .def_property_readonly("_framed_size",
                               [](const G& g) { return locked(g, [](const T& o) { return checkpoint::framed_size(o); }); },
                               "len(to_bytes()), without the bytes.")
        .def_static("_load_range",
                    [](int fd, std::uint64_t offset, std::uint64_t size, const std::string& source) {
                        py::gil_scoped_release nogil;
                        return std::make_unique<G>(checkpoint::load_range<T>(fd, offset, size, source));
                    },
                    py::arg("fd"), py::arg("offset"), py::arg("size"), py::arg("source"),
                    "The state framed in bytes [offset, offset + size) of the open file fd, read where it lies;\n"
                    "errors name `source` and the file offset.")
        .def_property_readonly("n", [](const G& g) { return locked(g, [](const T& o) { return std::uint64_t(o.n()); }); },
                               "Samples seen.")
        .def_property_readonly("dim", [](const G& g) { return locked(g, [](const T& o) { return std::size_t(o.dim()); }); },
                               "Dimension D of a row.")
        .def_property_readonly("empty", [](const G& g) { return locked(g, [](const T& o) { return o.empty(); }); }, "True before the first sample.")
        .def_property_readonly("_configuration",
                               [](const G& g) {  // a std::tuple: locked() runs without the GIL
                                   return locked(g, [](const T& o) {
                                       return std::make_tuple(std::uint64_t(o.dim()), std::uint64_t(o.aux_dim()),
                                                              std::uint64_t(o.config_hash()));
                                   });
                               },
                               "(D, auxiliary size, configuration hash): what a checkpoint's header records of the\n"
                               "state's configuration (recalign.track compares it when resuming).")
        .def("__len__", [](const G& g) { return locked(g, [](const T& o) { return std::size_t(o.n()); }); })
        .def("copy", [](const G& g) { return locked(g, [](const T& o) { return std::make_unique<G>(T(o)); }); },
             "An independent copy of the state.")
        .def("__copy__", [](const G& g) { return locked(g, [](const T& o) { return std::make_unique<G>(T(o)); }); })
        .def("__deepcopy__",
             [](const G& g, py::handle) { return locked(g, [](const T& o) { return std::make_unique<G>(T(o)); }); },
             py::arg("memo"))
        .def(py::pickle([](const G& g) { return py::make_tuple(state_bytes<T>(g)); },
                        [](const py::tuple& t) {
                            if (t.size() != 1) throw std::invalid_argument("bad pickle state");
                            return from_state_bytes<T>(t[0], "<pickle>");
                        }));
}

void bind_stats(py::module_& m);
void bind_class_moments(py::module_& m);
void bind_lock(py::module_& m);
void bind_image(py::module_& m);
void bind_readers(py::module_& m);
void bind_sketch(py::module_& m);
void bind_align(py::module_& m);
void bind_highd(py::module_& m);
void bind_monte_carlo_sketch(py::module_& m);

}  // namespace recalign::python

namespace recalign::python {

// a.merge(b) under both locks (std::scoped_lock orders them, so a.merge(b) and b.merge(a)
// in two threads cannot deadlock); merging an object with itself merges a copy.
template <class T>
void merge_guarded(guarded<T>& a, const guarded<T>& b) {
    py::gil_scoped_release nogil;
    if (&a == &b) {
        std::lock_guard<std::mutex> lock(a.mu);
        const T copy(a.obj);
        a.obj.merge(copy);
    } else {
        std::scoped_lock lock(a.mu, b.mu);
        a.obj.merge(b.obj);
    }
}

}  // namespace recalign::python
