// libFuzzer harness: the parser of list files (io/image_list.hpp, parse_image_list), which
// reads no other file. Checks what it promises: at least one sample, labels >= 0, class ids
// below the number of class names when the labels are names. Any std::exception is an
// expected rejection; anything else is a bug.
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <string>

#include "recalign/io/image_list.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        const recalign::io::image_list l =
            recalign::io::parse_image_list(std::string(reinterpret_cast<const char*>(data), size), "list.txt", "root");
        if (l.samples.empty()) std::abort();
        for (const recalign::io::image_sample& s : l.samples) {
            if (s.label < 0) std::abort();
            if (!l.class_names.empty() && static_cast<std::size_t>(s.label) >= l.class_names.size()) std::abort();
            if (s.path.rfind("root/", 0) != 0) std::abort();
        }
    } catch (const std::exception&) {
    }
    return 0;
}
