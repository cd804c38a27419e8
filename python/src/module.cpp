// The extension module recalign._recalign (the package recalign re-exports it and adds the
// pure-Python data-loader hooks).
//
// Errors: std::invalid_argument (bad arguments, bad batches: the object is unchanged) →
// ValueError with the C++ message (which names the row); recalign::file_error (unreadable,
// truncated or corrupt checkpoint bytes or files) → recalign.FileError, a subclass of OSError
// with .file and .offset; std::system_error (a write failed) → OSError with errno;
// io::lock_error (another run holds a checkpoint's lock) → recalign.LockError, a
// BlockingIOError with .file and .pid (bind_lock.cpp).
#include <system_error>

#include "common.hpp"
#include "recalign/core/errors.hpp"

namespace py = pybind11;

PYBIND11_MODULE(_recalign, m) {
    m.doc() = "recalign: streaming alignment of the reconstruction subspace with a supervised task (C++ core).";
    m.attr("__version__") = "0.1.0";

    static py::exception<recalign::file_error> file_error_type(m, "FileError", PyExc_OSError);
    file_error_type.doc() = "A checkpoint file or byte string is unreadable, truncated or corrupt. Subclass of OSError;\n"
                            "str() names the file (or <bytes>/<pickle>) and, for an error at a byte of it, the byte offset;\n"
                            ".file and .offset hold them (.offset is None for an error of the whole file, e.g. cannot open).";
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const recalign::file_error& e) {
            // .file, not .filename: OSError would reformat str()
            recalign::python::set_error(file_error_type, e.what(), {{"file", py::str(e.file())}, {"offset", e.offset() ? py::object(py::int_(*e.offset())) : py::object(py::none())}});
        } catch (const std::system_error& e) {
            py::object exc = py::reinterpret_borrow<py::object>(PyExc_OSError)(e.code().value(), py::str(e.what()));
            PyErr_SetObject(PyExc_OSError, exc.ptr());
        }
    });

    recalign::python::bind_stats(m);
    recalign::python::bind_class_moments(m);
    recalign::python::bind_sketch(m);
    recalign::python::bind_align(m);
    recalign::python::bind_highd(m);
    recalign::python::bind_lock(m);
    recalign::python::bind_image(m);
    recalign::python::bind_readers(m);
}
