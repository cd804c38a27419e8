// libFuzzer harness: the checkpoint loader (checkpoint::load_state) of five accumulator
// kinds. The first input byte selects the kind (bits 0-2, taken modulo 5: moment_accumulator,
// frequent_directions, nystrom_sketch, alignment_tracker, class_moments; seeds written when
// only bits 0-1 chose one mean what they meant then) and the mode (bit 4):
//   raw      the rest is the checkpoint as is (header and payload CRCs must match, so
//            most mutations stop at the checksums: this covers the framing);
//   reframed the harness rewrites the rest's kind, payload size and both CRCs so that the
//            mutated payload reaches the cereal parser and the load_payload functions.
// Any std::exception is an expected rejection; anything else is a bug.
#include <cstdint>
#include <cstring>
#include <exception>
#include <sstream>
#include <string>

#include "recalign/align/tracker.hpp"
#include "recalign/core/hash.hpp"
#include "recalign/core/serial.hpp"
#include "recalign/sketch/frequent_directions.hpp"
#include "recalign/sketch/nystrom_sketch.hpp"
#include "recalign/stats/class_moments.hpp"
#include "recalign/stats/moments.hpp"

namespace ckpt = recalign::checkpoint;

namespace {
template <class T>
void load(const std::string& bytes) {
    std::istringstream is(bytes, std::ios::binary);
    try {
        T obj = ckpt::load_state<T>(is, "fuzz");
        (void)obj.dim();
    } catch (const std::exception&) {
    }
}

void put32(std::string& s, std::size_t at, std::uint32_t v) { std::memcpy(&s[at], &v, 4); }
void put64(std::string& s, std::size_t at, std::uint64_t v) { std::memcpy(&s[at], &v, 8); }
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const unsigned selector = data[0];
    std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
    static constexpr ckpt::state_kind kinds[5] = {ckpt::state_kind::moments, ckpt::state_kind::frequent_directions,
                                                  ckpt::state_kind::nystrom, ckpt::state_kind::tracker,
                                                  ckpt::state_kind::class_moments};
    const ckpt::state_kind kind = kinds[(selector & 7) % 5];
    if ((selector & 0x10) && bytes.size() >= ckpt::header_bytes) {
        put32(bytes, 16, static_cast<std::uint32_t>(kind));
        put64(bytes, 48, bytes.size() - ckpt::header_bytes);
        put32(bytes, 56, recalign::crc32(bytes.data() + ckpt::header_bytes, bytes.size() - ckpt::header_bytes));
        put32(bytes, 60, recalign::crc32(bytes.data(), 60));
    }
    switch (kind) {
        case ckpt::state_kind::moments: load<recalign::moment_accumulator>(bytes); break;
        case ckpt::state_kind::frequent_directions: load<recalign::frequent_directions>(bytes); break;
        case ckpt::state_kind::nystrom: load<recalign::nystrom_sketch>(bytes); break;
        case ckpt::state_kind::class_moments: load<recalign::class_moments>(bytes); break;
        default: load<recalign::alignment_tracker>(bytes); break;
    }
    return 0;
}
