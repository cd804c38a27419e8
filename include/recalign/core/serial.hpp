// State framing: a fixed 64-byte header validated before anything is allocated, then a
// cereal portable-binary payload. One mechanism serves every state; a class provides
//
//     static constexpr checkpoint::state_kind kind;
//     std::uint64_t dim() const;  std::uint64_t aux_dim() const;  std::uint64_t config_hash() const;
//     template <class A> void save_payload(A&) const;
//     template <class A> static T load_payload(A&, checkpoint::budget&);
//
// and its save(std::ostream&) / load(std::istream&) are save_state / load_state below. The
// library's classes only declare the two payload templates: they are defined in
// lib/<part>/<name>_serial.cpp and explicitly instantiated there for output_archive and
// input_archive, the only archives the framing below uses, so that cereal is compiled where
// a payload is written or read and not by every file that includes a public header.
//
// A program may frame a state of its own with the same mechanism under a kind value the
// library does not list (state_kind{N}); it then names it with
// `static constexpr const char* kind_label`, which refusals use ("expected a <label>").
//
// Files (atomic writes, loading a file): recalign/io/files.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <istream>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

// The two archives the framing hands to payload code, declared only: a payload's code
// includes <cereal/archives/portable_binary.hpp> itself. (Forward declarations of cereal's
// own classes, so that payload templates can name them without cereal in this header.)
namespace cereal {
class PortableBinaryOutputArchive;
class PortableBinaryInputArchive;
}  // namespace cereal

namespace recalign::checkpoint {

using output_archive = cereal::PortableBinaryOutputArchive;
using input_archive = cereal::PortableBinaryInputArchive;

// The states the library frames. The header stores the kind as a u32, so a value not
// listed here is still a kind: a program's own state (see the comment at the top).
enum class state_kind : std::uint32_t {
    moments = 1,
    frequent_directions = 2,
    nystrom = 3,
    tracker = 4,
    noise = 5,
    // 6 is the recalign CLI's run state (tools/recalign/run_state.hpp): its checkpoints
    // exist on disk, so a library kind must never take that value.
    class_moments = 7,
    patch_blocks = 8,
    restricted_moments = 9,
    monte_carlo_sketch = 10,
};
// The library's name of a kind ("moment_accumulator", ...); for a value the library does
// not list, "state of kind N".
std::string kind_name(state_kind k);

constexpr std::uint32_t format_version = 1;
constexpr std::size_t header_bytes = 64;
// The largest payload a header may claim (1 TiB); anything above is refused as corrupt.
constexpr std::uint64_t max_payload_bytes = 1ULL << 40;
// The largest dimension a header may claim (BLAS indexes with int).
constexpr std::uint64_t max_dim = 1ULL << 31;

struct header {
    state_kind kind{};
    std::uint32_t version = format_version;
    std::uint64_t dim = 0;
    std::uint64_t aux = 0;
    std::uint64_t config_hash = 0;
    std::uint64_t payload_bytes = 0;
    std::uint32_t payload_crc = 0;
};

// Byte budget of a payload being parsed: every array length read from it is checked
// against what is left, so a crafted payload cannot make us allocate more than the file holds.
struct budget {
    std::uint64_t left;
    std::uint64_t size = 0;  // the payload's bytes (size - left: where the next part starts, for errors)
    void take(std::uint64_t bytes, const char* what);
};

// Writes header + payload (payload size and CRC-32 are computed here).
void write_framed(std::ostream& os, const header& h, const std::string& payload);
// Reads only the header, validated (for `recalign info`).
header read_header(std::istream& is, const std::string& source);
// Reads and validates a header, checks that it holds `expected` (named `expected_name` in
// the refusal), then reads the payload (in chunks: a truncated stream fails before the
// claimed size is ever allocated) and checks its checksum. `source` names the stream in
// error messages.
struct framed {
    header h;
    std::string payload;
};
framed read_framed(std::istream& is, state_kind expected, const std::string& expected_name, const std::string& source);
// Validates the header at the start of `bytes` and the payload after it (size, kind, CRC)
// without copying; returns the header. The payload is bytes[header_bytes, header_bytes +
// payload_bytes), and nothing may follow it.
header check_framed(std::string_view bytes, state_kind expected, const std::string& expected_name,
                    const std::string& source);
// Validates a header read from a file at byte `at` (`got` of its 64 bytes arrived) and that it
// holds `expected`; errors name `source` at file offsets (at + the field's).
header check_header(const void* bytes, std::uint64_t got, state_kind expected, const std::string& expected_name,
                    const std::string& source, std::uint64_t at = 0);

// Reads one scalar of a payload, charged to its budget. (Arrays: lib/core/payload.hpp.)
template <class Archive, class V>
void load_scalar(Archive& ar, V& v, budget& b) {
    b.take(sizeof(V), "scalar");
    ar(v);
}

namespace detail {
// The framing proper, compiled once in lib/core/serial.cpp; the templates below only
// adapt a class to it.
using save_fn = void (*)(const void* state, output_archive& ar);
// Serializes the payload through `save`, frames it under h (kind, dim, aux, config hash).
std::string frame(const void* state, save_fn save, header h);
// The same bytes handed to `sink` in pieces, the header first (the payload is serialized twice:
// its size and CRC-32, then its bytes; a large array passes through without a copy).
using sink_fn = std::function<void(const char* bytes, std::size_t size)>;
void frame_to(const void* state, save_fn save, header h, const sink_fn& sink);
// The bytes frame() would make, counted without making them (the serialization's size: no
// array is read).
std::uint64_t frame_size(const void* state, save_fn save);
// The payload serialized once, to `sink`, after 64 placeholder bytes; then `patch` receives the
// header (size and CRC-32 computed as the bytes went by) to write over them: a file written
// this way (io/files.hpp: save_file_once) is never held, nor serialized twice.
void frame_once(const void* state, save_fn save, header h, const sink_fn& sink,
                const std::function<void(const char* header)>& patch);

// What a parsed state says of itself, checked against its header.
struct state_facts {
    std::uint64_t dim, aux, config_hash;
};
using load_fn = state_facts (*)(void* out, input_archive& ar, budget& b);
// Parses a validated payload (header checked, CRC matched) into *out through `load`, then
// checks dimensions, configuration hash and that every byte was read; any failure is a
// file_error naming `source` at the payload's offset.
void parse(const header& h, const char* payload, std::size_t size, const std::string& source, void* out,
           load_fn load);
// The same from a stream positioned at the payload (its CRC checked already: io/files.hpp's
// load_range), of `size` bytes.
// Errors name the payload's offset `at` in `source`.
void parse_stream(const header& h, std::istream& in, std::uint64_t size, const std::string& source, void* out,
                  load_fn load, std::uint64_t at);

template <class T, class = void>
struct label_of {
    static std::string get() { return kind_name(T::kind); }
};
template <class T>
struct label_of<T, std::void_t<decltype(T::kind_label)>> {
    static std::string get() { return T::kind_label; }
};

template <class T>
state_facts load_into(void* out, input_archive& ar, budget& b) {
    auto& o = *static_cast<std::optional<T>*>(out);
    o.emplace(T::load_payload(ar, b));
    return state_facts{o->dim(), o->aux_dim(), o->config_hash()};
}

template <class T>
T parse_as(const header& h, const char* payload, std::size_t size, const std::string& source) {
    std::optional<T> obj;
    parse(h, payload, size, source, &obj, &load_into<T>);
    return std::move(*obj);
}

template <class T>
header header_of(const T& obj) {
    header h;
    h.kind = T::kind;
    h.dim = obj.dim();
    h.aux = obj.aux_dim();
    h.config_hash = obj.config_hash();
    return h;
}
template <class T>
void save_of(const void* p, output_archive& ar) {
    static_cast<const T*>(p)->save_payload(ar);
}
}  // namespace detail

// --- the one save/load mechanism ----------------------------------------------------
//
// to_bytes / from_bytes are the mechanism; the stream forms are thin wrappers (and the
// file forms in recalign/io/files.hpp).

template <class T>
std::string to_bytes(const T& obj) {
    header h;
    h.kind = T::kind;
    h.dim = obj.dim();
    h.aux = obj.aux_dim();
    h.config_hash = obj.config_hash();
    return detail::frame(
        &obj, [](const void* p, output_archive& ar) { static_cast<const T*>(p)->save_payload(ar); }, h);
}

// to_bytes(obj)'s bytes handed to `sink` in pieces instead of built in one string: a state
// written to a file (io/files.hpp: save_file, the CLI's checkpoints) without a copy of itself
// in memory beside it.
template <class T>
void write_to(const T& obj, const detail::sink_fn& sink) {
    header h;
    h.kind = T::kind;
    h.dim = obj.dim();
    h.aux = obj.aux_dim();
    h.config_hash = obj.config_hash();
    detail::frame_to(
        &obj, [](const void* p, output_archive& ar) { static_cast<const T*>(p)->save_payload(ar); }, h, sink);
}

// to_bytes(obj).size(), without the bytes.
template <class T>
std::uint64_t framed_size(const T& obj) {
    return detail::frame_size(&obj, &detail::save_of<T>);
}

template <class T>
T from_bytes(std::string_view bytes, const std::string& source = "<bytes>") {
    const header h = check_framed(bytes, T::kind, detail::label_of<T>::get(), source);
    return detail::parse_as<T>(h, bytes.data() + header_bytes, static_cast<std::size_t>(h.payload_bytes), source);
}

template <class T>
void save_state(std::ostream& os, const T& obj) {
    const std::string bytes = to_bytes(obj);
    os.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!os) throw std::runtime_error("writing the checkpoint stream failed");
}

template <class T>
T load_state(std::istream& is, const std::string& source = "<stream>") {
    const framed f = read_framed(is, T::kind, detail::label_of<T>::get(), source);
    return detail::parse_as<T>(f.h, f.payload.data(), f.payload.size(), source);
}

}  // namespace recalign::checkpoint
