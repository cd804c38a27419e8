// The framing of the CLI's nested stream states (verified_state, monte_carlo_state): u64
// counts and length-prefixed parts appended to a byte string, read back with a reader that
// names the checkpoint and what was truncated.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "recalign/core/errors.hpp"
#include "recalign/core/serial.hpp"

namespace recalign::cli {

inline void put_u64(std::string& s, std::uint64_t v) { s.append(reinterpret_cast<const char*>(&v), 8); }
inline void put_part(std::string& s, const std::string& part) {
    put_u64(s, part.size());
    s += part;
}

struct state_reader {
    std::string_view bytes;
    const std::string& source;
    const char* what;  // "verified state", ...
    [[noreturn]] void truncated() const {
        throw file_error(source, checkpoint::header_bytes, std::string(what) + " truncated");
    }
    std::uint64_t u64() {
        if (bytes.size() < 8) truncated();
        std::uint64_t v = 0;
        std::memcpy(&v, bytes.data(), 8);
        bytes.remove_prefix(8);
        return v;
    }
    std::string part() {
        const std::uint64_t len = u64();
        if (len > bytes.size()) truncated();
        std::string p(bytes.substr(0, static_cast<std::size_t>(len)));
        bytes.remove_prefix(static_cast<std::size_t>(len));
        return p;
    }
};

}  // namespace recalign::cli
