// CheckpointLock and LockError: the advisory lock a run holds on its checkpoint (io/lock.hpp),
// the one recalign.hooks.track and the CLI's streaming driver take.
#include <memory>
#include <string>

#include "common.hpp"
#include "recalign/io/lock.hpp"

namespace recalign::python {

void bind_lock(py::module_& m) {
    // BlockingIOError, as Python's own fcntl.flock(LOCK_EX | LOCK_NB) raises when a lock is taken.
    static py::exception<io::lock_error> lock_error_type(m, "LockError", PyExc_BlockingIOError);
    lock_error_type.doc() =
        "Another run holds the checkpoint's lock. Subclass of BlockingIOError (an OSError); str() names the\n"
        "checkpoint, the holder's pid and the lock file; .file holds the checkpoint path, .pid the holder's pid\n"
        "(0 when unreadable).";
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const io::lock_error& e) {
            set_error(lock_error_type, e.what(), {{"file", py::str(e.checkpoint())}, {"pid", py::int_(e.holder_pid())}});
        }
    });

    py::class_<io::checkpoint_lock>(m, "CheckpointLock", R"doc(
Exclusive advisory lock on a checkpoint path, so that two runs never write one file: an
flock on the sidecar PATH.lock, which holds the owner's pid. Taken without waiting when the
object is made; a second holder (another process, or another CheckpointLock in this one)
gets recalign.LockError naming the first's pid. Released by release(), by leaving a `with`
block, or when the object is collected; a killed process's lock dies with it (its stale
sidecar blocks nobody).

    with recalign.CheckpointLock("run.ckpt"):
        ...                      # save run.ckpt as often as needed

recalign.hooks.track(..., checkpoint=PATH) holds it for the whole run.)doc")
        .def(py::init([](py::object path) {
                 const std::string p = py::module_::import("os").attr("fspath")(path).cast<std::string>();
                 py::gil_scoped_release nogil;  // may look again for up to ~0.5 s (io/lock.hpp)
                 return std::make_unique<io::checkpoint_lock>(p);
             }),
             py::arg("path"), "Take the lock of checkpoint `path` (str or os.PathLike).")
        .def("release", &io::checkpoint_lock::release, "Let go (removes the sidecar). Idempotent.")
        .def_property_readonly("held", &io::checkpoint_lock::held, "True while this object holds the lock.")
        .def_property_readonly("path", &io::checkpoint_lock::checkpoint, "The checkpoint path.")
        .def_property_readonly("lock_path", &io::checkpoint_lock::lock_path, "The sidecar holding the lock (PATH.lock).")
        .def("__enter__", [](io::checkpoint_lock& l) -> io::checkpoint_lock& { return l; },
             py::return_value_policy::reference)
        .def("__exit__", [](io::checkpoint_lock& l, py::args) { l.release(); })
        .def("__repr__", [](const io::checkpoint_lock& l) {
            return "CheckpointLock('" + l.checkpoint() + "', held=" + (l.held() ? "True" : "False") + ")";
        });
}

}  // namespace recalign::python
