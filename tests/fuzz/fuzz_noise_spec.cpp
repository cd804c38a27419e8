// libFuzzer harness: the noise-spec parser (parse_noise_spec, validate, to_string). A spec
// that parses and validates must print to a canonical text that parses to the same text.
// Any std::exception is an expected rejection; anything else (including a failed
// round trip, which aborts) is a bug.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "recalign/align/noise.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    recalign::noise_spec spec;
    try {
        spec = recalign::parse_noise_spec(text);
    } catch (const std::exception&) {
        return 0;
    }
    try {
        recalign::validate(spec);
    } catch (const std::exception&) {
        return 0;
    }
    const std::string canonical = recalign::to_string(spec);
    std::string again;
    try {
        again = recalign::to_string(recalign::parse_noise_spec(canonical));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "canonical text '%s' does not parse: %s\n", canonical.c_str(), e.what());
        std::abort();
    }
    if (again != canonical) {
        std::fprintf(stderr, "round trip: '%s' -> '%s'\n", canonical.c_str(), again.c_str());
        std::abort();
    }
    return 0;
}
