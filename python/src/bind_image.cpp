// decode_image: recalign's image decoder and geometry (io/image.hpp) on bytes, for tests and
// for checking a data set's pixels against PIL / torchvision. The readers (ImageFolder,
// Cifar) are bound elsewhere.
#include <string>
#include <utility>
#include <vector>

#include "common.hpp"
#include "recalign/io/image.hpp"

namespace recalign::python {

void bind_image(py::module_& m) {
    m.def(
        "decode_image",
        [](py::bytes data, int channels, std::size_t resize, std::pair<std::size_t, std::size_t> crop,
           const std::string& layout, const std::string& name) {
            io::image_geometry g;
            g.channels = channels;
            g.resize = resize;
            g.crop_h = crop.first;
            g.crop_w = crop.second;
            if (layout == "hwc") g.layout = image_layout::hwc;
            else if (layout == "chw") g.layout = image_layout::chw;
            else throw py::value_error("layout must be \"hwc\" or \"chw\", got \"" + layout + "\"");
            g.validate();
            const std::string bytes = data;  // a copy: the GIL is released while decoding
            io::image decoded, scratch;
            std::vector<std::uint8_t> out;
            std::size_t h = 0, w = 0;
            {
                py::gil_scoped_release nogil;
                io::decode_image(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), channels, decoded, name);
                std::tie(h, w) = io::output_size(decoded.height, decoded.width, g);
                out.resize(h * w * static_cast<std::size_t>(channels));
                io::transform_image(decoded, g, scratch, out.data(), out.size());
            }
            const auto c = static_cast<py::ssize_t>(channels);
            const auto H = static_cast<py::ssize_t>(h), W = static_cast<py::ssize_t>(w);
            py::array_t<std::uint8_t> a(g.layout == image_layout::hwc ? std::vector<py::ssize_t>{H, W, c}
                                                                        : std::vector<py::ssize_t>{c, H, W});
            std::copy(out.begin(), out.end(), a.mutable_data());
            return a;
        },
        py::arg("data"), py::arg("channels") = 3, py::arg("resize") = 0,
        py::arg("crop") = std::pair<std::size_t, std::size_t>{0, 0}, py::arg("layout") = "hwc",
        py::arg("name") = "<bytes>",
        R"doc(Decode a JPEG or PNG (bytes) as PIL's Image.open(f).convert("RGB" / "L") does, then apply
torchvision's Resize(resize) (0: none) and CenterCrop(crop) ((0, 0): none) as on a PIL image.
Returns a uint8 array (H, W, C) for layout="hwc" or (C, H, W) for "chw". Corrupt, truncated or
unsupported data raises recalign.FileError naming `name`.)doc");
}

}  // namespace recalign::python
