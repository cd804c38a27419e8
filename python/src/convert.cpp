#include <cstring>
#include <stdexcept>
#include <string>

#include "common.hpp"
#include "recalign/core/checked.hpp"

namespace recalign::python {

namespace {

py::module_ numpy() { return py::module_::import("numpy"); }

// CPU torch tensors (and anything else with .detach().numpy()) become NumPy views: detach()
// and numpy() never copy a CPU tensor; a tensor on another device is copied to the CPU once.
// bfloat16 (which NumPy has no dtype for) is converted once to float32, which holds every
// bfloat16 value exactly.
py::object unwrap_tensor(py::handle obj) {
    py::handle type = reinterpret_cast<PyObject*>(Py_TYPE(obj.ptr()));
    const std::string module = py::str(type.attr("__module__"));
    if (module.rfind("torch", 0) != 0 || !py::hasattr(obj, "numpy")) return py::reinterpret_borrow<py::object>(obj);
    py::object t = py::reinterpret_borrow<py::object>(obj);
    if (py::hasattr(t, "detach")) t = t.attr("detach")();
    if (py::hasattr(t, "device") && std::string(py::str(t.attr("device").attr("type"))) != "cpu") t = t.attr("cpu")();
    if (py::hasattr(t, "dtype") && std::string(py::str(t.attr("dtype"))) == "torch.bfloat16") t = t.attr("float")();
    try {
        return t.attr("numpy")();
    } catch (py::error_already_set& e) {
        throw py::value_error(std::string("cannot read the tensor as a NumPy array: ") + e.what());
    }
}

// Finds the first row (of a batch that failed to convert as a whole) that does not convert.
[[noreturn]] void conversion_failure(const py::array& a, const char* what, const char* target,
                                     std::uint64_t first_row, const std::string& why) {
    const std::string dtype = py::str(a.attr("dtype"));
    if (a.ndim() >= 1) {
        const py::ssize_t rows = a.shape(0);
        for (py::ssize_t r = 0; r < rows; ++r) {
            try {
                numpy().attr("asarray")(a[py::int_(r)], py::arg("dtype") = target);
            } catch (py::error_already_set& e) {
                throw py::value_error(std::string(what) + ": row " + std::to_string(first_row + r) + ": cannot convert " +
                                      dtype + " values to " + target + ": " + e.what());
            }
        }
    }
    throw py::value_error(std::string(what) + ": cannot convert " + dtype + " values to " + target + ": " + why);
}

// Objects that are not arrays of samples of any kind: TypeError naming the type (NumPy
// would make a 0-d array of None or of a string, or an object array of a sparse matrix).
void refuse_non_array(py::handle obj, const char* what) {
    py::handle type = reinterpret_cast<PyObject*>(Py_TYPE(obj.ptr()));
    const std::string module = py::str(type.attr("__module__"));
    const std::string name = module == "builtins" ? std::string(py::str(type.attr("__qualname__")))
                                                  : module + "." + std::string(py::str(type.attr("__qualname__")));
    if (obj.is_none() || py::isinstance<py::str>(obj) || py::isinstance<py::bytes>(obj) || py::isinstance<py::dict>(obj) ||
        PySet_Check(obj.ptr()) || PyByteArray_Check(obj.ptr()))
        throw py::type_error(std::string(what) + ": expected an array (NumPy array, torch tensor or nested sequence), got " + name);
    if (module.rfind("scipy.sparse", 0) == 0)
        throw py::type_error(std::string(what) + ": sparse matrices are not read (got " + name +
                             "); pass each batch densified, e.g. x.toarray()");
}

py::array as_array(py::handle obj, const char* what) {
    refuse_non_array(obj, what);
    py::object o = unwrap_tensor(obj);
    if (py::isinstance<py::array>(o)) return o.cast<py::array>();
    try {
        return numpy().attr("asarray")(o).cast<py::array>();
    } catch (py::error_already_set& e) {
        throw py::value_error(std::string(what) + ": not an array: " + e.what());
    }
}

bool native_c_contiguous(const py::array& a) {
    return (a.flags() & py::array::c_style) && (a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_) &&
           py::str(a.dtype().attr("byteorder")).cast<std::string>() != ">";
}

char kind_of(const py::array& a) { return a.dtype().kind(); }

}  // namespace

held_batch as_batch(py::handle obj, const char* what, std::uint64_t first_row) {
    py::array a = as_array(obj, what);
    if (a.ndim() < 2)
        throw py::value_error(std::string(what) + ": expected a batch with rows = samples (2 or more dimensions), got " +
                              std::to_string(a.ndim()) + " dimension(s); for one sample use x.reshape(1, -1)");
    const char k = kind_of(a);
    if (k == 'c') throw py::value_error(std::string(what) + ": complex values cannot be used");
    // Strings, dates, durations and raw records are not samples, even where NumPy would cast
    // them ("1.5" -> 1.5, a datetime -> its tick count): refused like the CLI refuses such a
    // .npy dtype. Object arrays are converted element by element (the failing row is named).
    if (k == 'U' || k == 'S' || k == 'M' || k == 'm' || k == 'V')
        throw py::value_error(std::string(what) + ": dtype " + std::string(py::str(a.attr("dtype"))) +
                              " is not numeric (expected float, integer or bool values)");
    const bool direct = native_c_contiguous(a) &&
                        (a.dtype().is(py::dtype::of<double>()) || a.dtype().is(py::dtype::of<float>()) ||
                         a.dtype().is(py::dtype::of<std::uint8_t>()) || a.dtype().equal(py::dtype::of<double>()) ||
                         a.dtype().equal(py::dtype::of<float>()) || a.dtype().equal(py::dtype::of<std::uint8_t>()));
    if (k == 'O') {  // NumPy would make None a NaN, then named as "value nan"
        py::object at;
        try {
            at = numpy().attr("flatnonzero")(numpy().attr("equal")(a, py::none()));
        } catch (py::error_already_set&) {  // elements that cannot be compared: the conversion names them
            at = py::list();
        }
        if (py::len(at)) {
            const std::size_t i = at.attr("__getitem__")(0).cast<std::size_t>();
            const std::size_t cols = a.shape(0) ? static_cast<std::size_t>(a.size()) / static_cast<std::size_t>(a.shape(0)) : 1;
            throw py::value_error("row " + std::to_string(first_row + i / cols) + ", column " + std::to_string(i % cols) +
                                  ": value None is not a number");
        }
    }
    if (!direct) {
        // Converted once, to float64 (float32 for float32 in the wrong layout and for float16,
        // whose values float32 holds exactly).
        const char* target = (k == 'f' && a.itemsize() <= 4) ? "float32" : (k == 'u' && a.itemsize() == 1) ? "uint8" : "float64";
        try {
            a = numpy().attr("ascontiguousarray")(a, py::arg("dtype") = target).cast<py::array>();
        } catch (py::error_already_set& e) {
            conversion_failure(a, what, target, first_row, e.what());
        }
    }
    const std::size_t cols = checked_product(a.shape() + 1, a.shape() + a.ndim(), "array row size");
    const std::size_t rows = static_cast<std::size_t>(a.shape(0));
    held_batch h{a, {}};
    if (a.dtype().equal(py::dtype::of<double>()))
        h.view = batch_view(static_cast<const double*>(a.data()), rows, cols);
    else if (a.dtype().equal(py::dtype::of<float>()))
        h.view = batch_view(static_cast<const float*>(a.data()), rows, cols);
    else
        h.view = batch_view(static_cast<const std::uint8_t*>(a.data()), rows, cols);
    return h;
}

held_labels as_labels(py::handle obj, std::uint64_t first_row) {
    py::array a = as_array(obj, "labels");
    if (a.ndim() == 2 && a.shape(1) == 1) a = a.attr("reshape")(-1).cast<py::array>();
    if (a.ndim() != 1)
        throw py::value_error("labels: expected one class id per row (1 dimension), got " + std::to_string(a.ndim()) +
                              " dimensions");
    const char k = kind_of(a);
    if (k != 'i' && k != 'u' && k != 'b') {
        if (k == 'O') conversion_failure(a, "labels", "int64", first_row, "not integers");
        throw py::value_error("labels: class ids must be integers, got " + std::string(py::str(a.attr("dtype"))));
    }
    const bool direct = native_c_contiguous(a) && (a.dtype().equal(py::dtype::of<std::uint8_t>()) ||
                                                   a.dtype().equal(py::dtype::of<std::int32_t>()) ||
                                                   a.dtype().equal(py::dtype::of<std::int64_t>()));
    if (!direct) {
        if (k == 'u' && a.itemsize() == 8) {
            // uint64 would wrap in int64: refuse values above its range, naming the row.
            py::object big = numpy().attr("flatnonzero")(a.attr("__gt__")(py::int_(INT64_MAX)));
            if (py::len(big) > 0) {
                const auto at = big[py::int_(0)].cast<std::uint64_t>();
                throw py::value_error("labels: row " + std::to_string(first_row + at) + ": class id " +
                                      std::to_string(a.attr("__getitem__")(at).cast<std::uint64_t>()) +
                                      " is out of range (class ids are at most 2^63 - 1)");
            }
        }
        a = numpy().attr("ascontiguousarray")(a, py::arg("dtype") = "int64").cast<py::array>();
    }
    const std::size_t n = static_cast<std::size_t>(a.shape(0));
    held_labels h{a, {}};
    if (a.dtype().equal(py::dtype::of<std::uint8_t>()))
        h.view = target_view::class_ids(static_cast<const std::uint8_t*>(a.data()), n);
    else if (a.dtype().equal(py::dtype::of<std::int32_t>()))
        h.view = target_view::class_ids(static_cast<const std::int32_t*>(a.data()), n);
    else
        h.view = target_view::class_ids(static_cast<const std::int64_t*>(a.data()), n);
    return h;
}

py::array_t<double> to_numpy(const vector_t& v) {
    py::array_t<double> out(static_cast<py::ssize_t>(v.size()));
    if (v.size()) std::memcpy(out.mutable_data(), v.data(), v.size() * sizeof(double));
    return out;
}

py::array_t<double> to_numpy(const matrix_t& m) {
    py::array_t<double> out({static_cast<py::ssize_t>(m.shape(0)), static_cast<py::ssize_t>(m.shape(1))});
    if (m.size()) std::memcpy(out.mutable_data(), m.data(), m.size() * sizeof(double));
    return out;
}

py::array_t<double> to_numpy(matrix_t&& m) {
    if (!m.size()) return to_numpy(static_cast<const matrix_t&>(m));  // an empty matrix's data() may be null
    auto* held = new matrix_t(std::move(m));
    py::capsule owner(held, [](void* p) { delete static_cast<matrix_t*>(p); });
    return py::array_t<double>({static_cast<py::ssize_t>(held->shape(0)), static_cast<py::ssize_t>(held->shape(1))},
                               held->data(), owner);
}

vector_t to_vector(py::handle obj, const char* what) {
    py::array a = as_array(obj, what);
    py::array_t<double, py::array::c_style | py::array::forcecast> d;
    try {
        d = numpy().attr("ascontiguousarray")(a, py::arg("dtype") = "float64").cast<py::array_t<double, py::array::c_style | py::array::forcecast>>();
    } catch (py::error_already_set& e) {
        throw py::value_error(std::string(what) + ": " + e.what());
    }
    if (d.ndim() != 1) throw py::value_error(std::string(what) + ": expected a 1-D array");
    vector_t v = vector_t::from_shape({static_cast<std::size_t>(d.shape(0))});
    if (v.size()) std::memcpy(v.data(), d.data(), v.size() * sizeof(double));
    return v;
}

matrix_t to_matrix(py::handle obj, const char* what) { return to_matrix(obj, what, 0); }

matrix_t to_matrix(py::handle obj, const char* what, std::size_t room) {
    py::array a = as_array(obj, what);
    py::array_t<double, py::array::c_style | py::array::forcecast> d;
    try {
        d = numpy().attr("ascontiguousarray")(a, py::arg("dtype") = "float64").cast<py::array_t<double, py::array::c_style | py::array::forcecast>>();
    } catch (py::error_already_set& e) {
        throw py::value_error(std::string(what) + ": " + e.what());
    }
    if (d.ndim() != 2) throw py::value_error(std::string(what) + ": expected a 2-D array");
    const std::size_t rows = static_cast<std::size_t>(d.shape(0)), cols = static_cast<std::size_t>(d.shape(1));
    if (!room) {
        matrix_t m = matrix_t::from_shape({rows, cols});
        if (m.size()) std::memcpy(m.data(), d.data(), m.size() * sizeof(double));
        return m;
    }
    matrix_t m = xt::zeros<double>({rows, checked_add(cols, room, what)});
    for (std::size_t i = 0; i < rows && cols; ++i) std::memcpy(&m(i, 0), d.data() + i * cols, cols * sizeof(double));
    return m;
}

centering parse_centering(const std::string& s) {
    if (s == "centered") return centering::centered;
    if (s == "uncentered") return centering::uncentered;
    throw std::invalid_argument("centering must be 'centered' or 'uncentered', got '" + s + "'");
}

}  // namespace recalign::python
