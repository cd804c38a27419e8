#include "recalign/io/cifar.hpp"

#include <fstream>

#include "recalign/core/errors.hpp"

namespace recalign::io {

std::size_t cifar_record_size(cifar_kind k) { return (k == cifar_kind::cifar10 ? 1 : 2) + cifar_pixels; }

std::size_t cifar_classes(cifar_kind k, cifar_label l) {
    if (k == cifar_kind::cifar10) return 10;
    return l == cifar_label::fine ? 100 : 20;
}

bool whole_cifar_records(std::uint64_t bytes, cifar_kind k) { return bytes > 0 && bytes % cifar_record_size(k) == 0; }

cifar_kind detect_cifar(std::uint64_t bytes, const std::string& name) {
    const bool ten = whole_cifar_records(bytes, cifar_kind::cifar10);
    const bool hundred = whole_cifar_records(bytes, cifar_kind::cifar100);
    if (ten && !hundred) return cifar_kind::cifar10;
    if (hundred && !ten) return cifar_kind::cifar100;
    throw file_error(name, std::to_string(bytes) + " bytes are " +
                               (ten ? std::string("whole records of both CIFAR-10 (3073 bytes) and CIFAR-100 (3074): "
                                                  "pass --format cifar10 or cifar100")
                                    : std::string("not a whole number of CIFAR-10 (3073-byte) or CIFAR-100 "
                                                  "(3074-byte) records")));
}

std::int64_t decode_cifar_record(const std::uint8_t* rec, cifar_kind k, cifar_label l, int channels, image& out,
                                 const std::string& name, std::uint64_t offset) {
    const bool ten = k == cifar_kind::cifar10;
    const std::size_t at = ten ? 0 : (l == cifar_label::coarse ? 0 : 1);
    const std::int64_t label = rec[at];
    if (static_cast<std::size_t>(label) >= cifar_classes(k, l))
        throw file_error(name, offset + at, std::string(ten ? "CIFAR-10" : l == cifar_label::fine ? "CIFAR-100 fine" : "CIFAR-100 coarse") +
                                                " label " + std::to_string(label) + " is not below " +
                                                std::to_string(cifar_classes(k, l)) + " (not a CIFAR record, or the wrong --format/--label-kind)");
    const std::uint8_t* px = rec + (ten ? 1 : 2);
    constexpr std::size_t plane = cifar_side * cifar_side;
    out.height = out.width = cifar_side;
    out.channels = channels == 1 ? 1 : 3;
    out.pixels.resize(plane * out.channels);
    std::uint8_t* o = out.pixels.data();
    if (channels == 1) {
        // PIL's convert("L"): L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16.
        for (std::size_t i = 0; i < plane; ++i)
            o[i] = static_cast<std::uint8_t>((19595u * px[i] + 38470u * px[plane + i] + 7471u * px[2 * plane + i] + 0x8000u) >> 16);
    } else {
        for (std::size_t i = 0; i < plane; ++i) {
            o[3 * i] = px[i];
            o[3 * i + 1] = px[plane + i];
            o[3 * i + 2] = px[2 * plane + i];
        }
    }
    return label;
}

std::vector<std::string> cifar_class_names(const std::string& dir, cifar_kind k, cifar_label l) {
    const std::string file = k == cifar_kind::cifar10 ? "batches.meta.txt"
                             : l == cifar_label::fine ? "fine_label_names.txt"
                                                      : "coarse_label_names.txt";
    std::ifstream is(dir + "/" + file);
    std::vector<std::string> names;
    std::string line;
    while (is && std::getline(is, line) && names.size() <= 100) {
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
        if (!line.empty()) names.push_back(line);
    }
    if (names.size() != cifar_classes(k, l)) names.clear();
    return names;
}

}  // namespace recalign::io
