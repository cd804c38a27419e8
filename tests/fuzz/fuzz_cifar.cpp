// libFuzzer harness: CIFAR-10/100 binary batches through data_source, as the CLI reads them.
// The first input byte selects the options: bit 0 cifar10 / cifar100, bit 1 fine / coarse
// labels, bit 2 one / three channels, bit 3 hwc / chw, bits 4-5 no geometry / crop 8,8 /
// resize 12 / crop 40,40 (padding); the rest is the file. Every batch is read (at most
// max_rows rows). Any std::exception is an expected rejection; anything else is a bug.
#include <cstdint>
#include <exception>

#include "fuzz_common.hpp"
#include "recalign/io/source.hpp"

namespace {
constexpr std::uint64_t max_rows = 256;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::uint8_t mode = data[0];
    const std::string& path = recalign_fuzz::temp_path("cifar");
    recalign_fuzz::write_file(path, data + 1, size - 1);
    namespace io = recalign::io;
    try {
        io::source_options o;
        o.images = {path};
        o.format = mode & 1 ? io::data_format::cifar100 : io::data_format::cifar10;
        o.label_kind = mode & 2 ? io::cifar_label::coarse : io::cifar_label::fine;
        o.geometry.channels = mode & 4 ? 1 : 3;
        o.geometry.layout = mode & 8 ? recalign::image_layout::chw : recalign::image_layout::hwc;
        const int g = (mode >> 4) & 3;
        if (g == 1) o.geometry.crop_h = o.geometry.crop_w = 8;
        if (g == 2) o.geometry.resize = 12;
        if (g == 3) o.geometry.crop_h = o.geometry.crop_w = 40;
        o.batch = 3;
        io::data_source s(o);
        io::source_batch b;
        std::uint64_t rows = 0;
        while (rows < max_rows && s.next(b)) {
            rows += b.rows;
            if (b.labels.size() != b.rows || b.block.bytes.size() != b.rows * s.dim()) std::abort();
            for (std::int64_t y : b.labels)
                if (y < 0 || static_cast<std::size_t>(y) >= s.scan_classes()) std::abort();
        }
    } catch (const std::exception&) {
    }
    return 0;
}
