// The data readers (io/source.hpp) as Python iterables of (images, labels) batches: image
// folders, list files, CIFAR batches and the array formats, with the CLI's geometry and
// decoding threads. recalign.ImageFolder / ImageList / Cifar (recalign/__init__.py) make one.
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common.hpp"
#include "recalign/io/image_list.hpp"
#include "recalign/io/source.hpp"

namespace recalign::python {

namespace {

struct reader {
    std::unique_ptr<io::data_source> src;
    io::source_batch batch;
    std::vector<io::skipped_file> skipped;
    std::mutex m;
};

py::tuple next_batch(reader& r) {
    bool more = false;
    {
        std::lock_guard<std::mutex> lock(r.m);
        py::gil_scoped_release nogil;  // decoding runs in C++ threads
        if (r.src->position() == 0) r.skipped.clear();
        do {  // a batch whose files skip_unreadable all left out is not one: its files are recorded
            more = r.src->next(r.batch);
            if (more) r.skipped.insert(r.skipped.end(), r.batch.skipped.begin(), r.batch.skipped.end());
        } while (more && r.batch.rows == 0);
    }
    if (!more) throw py::stop_iteration();
    const io::source_batch& b = r.batch;
    const std::size_t es = dtype_size(b.type());
    py::array images = b.type() == dtype::u8    ? py::array(py::dtype::of<std::uint8_t>(), {b.rows, b.cols})
                       : b.type() == dtype::f32 ? py::array(py::dtype::of<float>(), {b.rows, b.cols})
                                                : py::array(py::dtype::of<double>(), {b.rows, b.cols});
    std::memcpy(images.mutable_data(), b.block.bytes.data(), b.rows * b.cols * es);
    if (!r.src->has_labels()) return py::make_tuple(images, py::none());
    py::array_t<std::int64_t> labels(static_cast<py::ssize_t>(b.rows));
    std::memcpy(labels.mutable_data(), b.labels.data(), b.rows * sizeof(std::int64_t));
    return py::make_tuple(images, labels);
}

}  // namespace

void bind_readers(py::module_& m) {
    py::class_<reader, std::shared_ptr<reader>>(m, "DataSource", R"doc(
An iterable of (images, labels) batches read from files: images a NumPy array (rows, D) in
the stored type (uint8 for image files and CIFAR), labels int64 (rows,) or None. Each
iteration starts from the first sample; the order, the batches and the pixels are those of
the CLI (`recalign ... --images`), whatever `threads`. Made by recalign.ImageFolder,
recalign.ImageList, recalign.Cifar (or directly, with the CLI's option names).)doc")
        .def(py::init([](std::vector<std::string> images, const std::string& format, const std::string& root,
                         int channels, std::size_t resize, std::pair<std::size_t, std::size_t> crop,
                         const std::string& layout, const std::string& label_kind, std::size_t batch,
                         std::size_t threads, bool skip_unreadable, std::vector<std::string> labels,
                         const std::string& classes_from) {
                 io::source_options o;
                 o.images = std::move(images);
                 o.labels = std::move(labels);
                 o.format = io::parse_format(format);
                 o.root = root;
                 o.classes_from = classes_from;
                 o.geometry.channels = channels;
                 o.geometry.resize = resize;
                 o.geometry.crop_h = crop.first;
                 o.geometry.crop_w = crop.second;
                 if (layout != "hwc" && layout != "chw") throw std::invalid_argument("layout must be 'hwc' or 'chw'");
                 o.geometry.layout = layout == "chw" ? image_layout::chw : image_layout::hwc;
                 if (label_kind != "fine" && label_kind != "coarse")
                     throw std::invalid_argument("label_kind must be 'fine' or 'coarse'");
                 o.label_kind = label_kind == "coarse" ? io::cifar_label::coarse : io::cifar_label::fine;
                 o.batch = batch;
                 o.threads = threads;
                 o.skip_unreadable = skip_unreadable;
                 auto r = std::make_shared<reader>();
                 py::gil_scoped_release nogil;
                 r->src = std::make_unique<io::data_source>(o);
                 return r;
             }),
             py::arg("images"), py::arg("format") = "auto", py::arg("root") = "", py::arg("channels") = 3,
             py::arg("resize") = 0, py::arg("crop") = std::pair<std::size_t, std::size_t>{0, 0},
             py::arg("layout") = "hwc", py::arg("label_kind") = "fine", py::arg("batch") = 256,
             py::arg("threads") = 0, py::arg("skip_unreadable") = false,
             py::arg("labels") = std::vector<std::string>{}, py::arg("classes_from") = "",
             R"doc(Opens the files and reads their headers (no pixels yet).

images: paths read as one stream (IDX, .npy, raw, CIFAR batches, image folders or list files);
format: "auto", "idx", "npy", "raw", "folder", "list", "cifar10" or "cifar100"; root: the
directory list files are relative to; channels: 1 or 3 (PIL's convert("L") / convert("RGB"));
resize: shorter side in pixels (0: none; torchvision Resize on PIL images); crop: (H, W)
centre crop (0, 0: none); layout: "hwc" or "chw" order of a row; label_kind: CIFAR-100
"fine" or "coarse"; batch: rows per batch; threads: decoding threads (0: the cores; results
do not depend on it); skip_unreadable: leave out unreadable images and list them in
skipped_files instead of raising; labels: one labels file per images file (IDX/.npy only);
classes_from: list files only, class names and ids from an image folder (ImageFolder's sorted
class folders) or a file of one name per line (CLI --classes-from).
Raises FileError naming the file for unreadable input, ValueError for bad options.)doc")
        .def("__iter__", [](std::shared_ptr<reader> r) {
            {
                std::lock_guard<std::mutex> lock(r->m);
                r->src->seek(0);
            }
            return r;
        })
        .def("__next__", [](reader& r) { return next_batch(r); })
        .def("__len__", [](const reader& r) { return r.src->total(); }, "Samples in the stream (skipped ones included).")
        .def_property_readonly("dim", [](const reader& r) { return r.src->dim(); }, "Values per row, D.")
        .def_property_readonly("format", [](const reader& r) { return std::string(io::format_name(r.src->format())); },
                               "The format read, resolved from \"auto\" (e.g. \"folder\", \"cifar10\").")
        .def_property_readonly("classes", [](const reader& r) { return r.src->class_names(); },
                               "Class names by class id (empty when the labels are bare integers).")
        .def_property_readonly("num_classes", [](const reader& r) { return r.src->has_labels() ? r.src->scan_classes() : 0; },
                               "Number of classes C: the largest label + 1 (0 without labels).")
        .def_property_readonly("samples", [](const reader& r) {
            py::list out;
            if (const io::image_list* l = r.src->image_files())
                for (const io::image_sample& s : l->samples) out.append(py::make_tuple(s.path, s.label));
            return out;
        }, "(path, class id) of every image file, in reading order (as torchvision's ImageFolder.samples).")
        .def_property_readonly("skipped_files", [](reader& r) {
            std::lock_guard<std::mutex> lock(r.m);
            py::list out;
            for (const io::skipped_file& f : r.skipped) out.append(py::make_tuple(f.index, f.path, f.reason));
            return out;
        }, "(index, path, reason) of the files skip_unreadable left out in the current iteration.");
}

}  // namespace recalign::python
