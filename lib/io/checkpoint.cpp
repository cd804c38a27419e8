#include "recalign/io/checkpoint.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <vector>

#include "recalign/core/hash.hpp"

namespace recalign::checkpoint {

namespace {
constexpr char magic[8] = {'R', 'E', 'C', 'A', 'L', 'I', 'G', 'N'};
constexpr std::uint32_t endian_tag = 0x01020304u;
constexpr std::uint32_t scalar_f64 = 8;  // IEEE-754 binary64

template <class T>
void put(unsigned char* p, T v) { std::memcpy(p, &v, sizeof v); }
template <class T>
T get(const unsigned char* p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
}  // namespace

const char* kind_name(state_kind k) {
    switch (k) {
        case state_kind::moments: return "moment_accumulator";
        case state_kind::frequent_directions: return "frequent_directions";
        case state_kind::nystrom: return "nystrom_sketch";
        case state_kind::tracker: return "alignment_tracker";
        case state_kind::noise: return "noise_accumulator";
        case state_kind::cli_run: return "cli_run";
        case state_kind::class_moments: return "class_moments";
        case state_kind::patch_blocks: return "patch_blocks";
        case state_kind::restricted_moments: return "restricted_moments";
    }
    return "unknown";
}

void budget::take(std::uint64_t bytes, const char* what) {
    if (bytes > left) {
        throw std::length_error(std::string(what) + " needs " + std::to_string(bytes) + " bytes but only " +
                                std::to_string(left) + " remain in the payload");
    }
    left -= bytes;
}

namespace {
void fill_header(unsigned char* b, const header& h, const char* payload, std::uint64_t payload_bytes) {
    std::memset(b, 0, header_bytes);
    std::memcpy(b, magic, 8);
    put<std::uint32_t>(b + 8, format_version);
    put<std::uint32_t>(b + 12, endian_tag);
    put<std::uint32_t>(b + 16, static_cast<std::uint32_t>(h.kind));
    put<std::uint32_t>(b + 20, scalar_f64);
    put<std::uint64_t>(b + 24, h.dim);
    put<std::uint64_t>(b + 32, h.aux);
    put<std::uint64_t>(b + 40, h.config_hash);
    put<std::uint64_t>(b + 48, payload_bytes);
    put<std::uint32_t>(b + 56, crc32(payload, static_cast<std::size_t>(payload_bytes)));
    put<std::uint32_t>(b + 60, crc32(b, 60));
}

// Validates the 64 header bytes `b` (of which `got` arrived).
header parse_header(const unsigned char* b, std::uint64_t got, const std::string& source) {
    if (got < header_bytes) {
        throw file_error(source, got, "truncated checkpoint: the header needs 64 bytes, the file has " +
                                          std::to_string(got));
    }
    if (std::memcmp(b, magic, 8) != 0) throw file_error(source, 0, "not a recalign checkpoint (bad magic)");
    if (get<std::uint32_t>(b + 60) != crc32(b, 60)) throw file_error(source, 60, "header checksum mismatch (corrupt header)");
    const auto version = get<std::uint32_t>(b + 8);
    if (version != format_version) {
        throw file_error(source, 8, "checkpoint format version " + std::to_string(version) +
                                        " is not supported (this build reads version " +
                                        std::to_string(format_version) + ")");
    }
    if (get<std::uint32_t>(b + 12) != endian_tag) {
        throw file_error(source, 12, "checkpoint was written on a machine of the other byte order");
    }
    if (get<std::uint32_t>(b + 20) != scalar_f64) throw file_error(source, 20, "unsupported scalar type");
    header h;
    h.kind = static_cast<state_kind>(get<std::uint32_t>(b + 16));
    h.version = version;
    h.dim = get<std::uint64_t>(b + 24);
    h.aux = get<std::uint64_t>(b + 32);
    h.config_hash = get<std::uint64_t>(b + 40);
    h.payload_bytes = get<std::uint64_t>(b + 48);
    h.payload_crc = get<std::uint32_t>(b + 56);
    if (h.dim > max_dim) throw file_error(source, 24, "absurd dimension " + std::to_string(h.dim));
    if (h.aux > max_dim) throw file_error(source, 32, "absurd auxiliary dimension " + std::to_string(h.aux));
    if (h.payload_bytes > max_payload_bytes) {
        throw file_error(source, 48, "absurd payload size " + std::to_string(h.payload_bytes) + " bytes");
    }
    return h;
}

void check_kind(const header& h, state_kind expected, const std::string& source) {
    if (h.kind != expected) {
        throw file_error(source, 16, std::string("checkpoint holds a ") + kind_name(h.kind) + ", expected a " +
                                         kind_name(expected));
    }
}

void check_payload_crc(const header& h, const char* payload, const std::string& source) {
    if (crc32(payload, static_cast<std::size_t>(h.payload_bytes)) != h.payload_crc) {
        throw file_error(source, header_bytes, "payload checksum mismatch (corrupt checkpoint)");
    }
}
}  // namespace

void write_framed(std::ostream& os, const header& h, const std::string& payload) {
    unsigned char b[header_bytes];
    fill_header(b, h, payload.data(), payload.size());
    os.write(reinterpret_cast<const char*>(b), header_bytes);
    os.write(payload.data(), static_cast<std::streamsize>(payload.size()));
    if (!os) throw std::runtime_error("writing the checkpoint stream failed");
}

void seal_framed(std::string& bytes, header h) {
    if (bytes.size() < header_bytes) throw std::logic_error("seal_framed: no room for the header");
    auto* b = reinterpret_cast<unsigned char*>(&bytes[0]);
    fill_header(b, h, bytes.data() + header_bytes, bytes.size() - header_bytes);
}

header read_header(std::istream& is, const std::string& source) {
    unsigned char b[header_bytes];
    is.read(reinterpret_cast<char*>(b), header_bytes);
    return parse_header(b, static_cast<std::uint64_t>(is.gcount()), source);
}

header check_framed(std::string_view bytes, state_kind expected, const std::string& source) {
    const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
    const header h = parse_header(b, std::min<std::uint64_t>(bytes.size(), header_bytes), source);
    check_kind(h, expected, source);
    const std::uint64_t have = bytes.size() - header_bytes;
    if (have < h.payload_bytes) {
        throw file_error(source, bytes.size(),
                         "truncated checkpoint: payload of " + std::to_string(h.payload_bytes) +
                             " bytes announced, the data ends after " + std::to_string(have));
    }
    if (have > h.payload_bytes) {
        throw file_error(source, header_bytes + h.payload_bytes,
                         std::to_string(have - h.payload_bytes) + " stray bytes after the checkpoint's payload");
    }
    check_payload_crc(h, bytes.data() + header_bytes, source);
    return h;
}

framed read_framed(std::istream& is, state_kind expected, const std::string& source) {
    framed f;
    f.h = read_header(is, source);
    check_kind(f.h, expected, source);
    // Read in bounded chunks: memory grows only with bytes that really arrive. When the
    // stream can tell how much it holds, reserve that much (never more than claimed) once,
    // instead of growing the buffer chunk by chunk.
    const std::istream::pos_type here = is.tellg();
    if (here != std::istream::pos_type(-1)) {
        is.seekg(0, std::ios::end);
        const std::istream::pos_type end = is.tellg();
        is.clear();  // the header was read, so the stream was good before probing its end
        is.seekg(here);
        if (end != std::istream::pos_type(-1) && end >= here)
            f.payload.reserve(static_cast<std::size_t>(
                std::min<std::uint64_t>(f.h.payload_bytes, static_cast<std::uint64_t>(end - here))));
    }
    constexpr std::size_t chunk = 1 << 20;
    std::uint64_t have = 0;
    while (have < f.h.payload_bytes) {
        const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, f.h.payload_bytes - have));
        f.payload.resize(static_cast<std::size_t>(have) + want);
        is.read(&f.payload[static_cast<std::size_t>(have)], static_cast<std::streamsize>(want));
        have += static_cast<std::uint64_t>(is.gcount());
        if (static_cast<std::size_t>(is.gcount()) < want) {
            throw file_error(source, header_bytes + have,
                             "truncated checkpoint: payload of " + std::to_string(f.h.payload_bytes) +
                                 " bytes announced, file ends after " + std::to_string(have));
        }
    }
    check_payload_crc(f.h, f.payload.data(), source);
    return f;
}

void throw_payload_error(const std::string& source, const header& h, const std::string& what) {
    (void)h;
    throw file_error(source, header_bytes, "invalid checkpoint payload: " + what);
}

namespace {
[[noreturn]] void sys_fail(const std::string& what, const std::string& path) {
    throw std::system_error(errno, std::generic_category(), what + " " + path);
}
std::string dir_of(const std::string& path) {
    const auto slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}
}  // namespace

std::size_t remove_stale_temporaries(const std::string& path) {
    const std::string dir = dir_of(path);
    const auto slash = path.find_last_of('/');
    const std::string prefix = (slash == std::string::npos ? path : path.substr(slash + 1)) + ".tmp.";
    DIR* d = ::opendir(dir.c_str());
    if (!d) return 0;  // nothing to clean where nothing can be listed; writing will say why
    std::vector<std::string> stale;
    while (const dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        // mkstemp's six characters: letters and digits
        if (name.size() != prefix.size() + 6 || name.compare(0, prefix.size(), prefix) != 0) continue;
        bool ok = true;
        for (std::size_t i = prefix.size(); i < name.size(); ++i)
            ok = ok && std::isalnum(static_cast<unsigned char>(name[i]));
        if (ok) stale.push_back(dir + "/" + name);
    }
    ::closedir(d);
    std::size_t removed = 0;
    for (const std::string& f : stale)
        if (::unlink(f.c_str()) == 0) ++removed;
    return removed;
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
    std::string tmp = path + ".tmp.XXXXXX";
    std::vector<char> name(tmp.begin(), tmp.end());
    name.push_back('\0');
    const int fd = ::mkstemp(name.data());
    if (fd < 0) sys_fail("cannot create a temporary file beside", path);
    tmp.assign(name.data());
    auto fail = [&](const char* what) {
        const int saved = errno;
        ::close(fd);
        ::unlink(tmp.c_str());
        errno = saved;
        sys_fail(what, tmp);
    };
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (w < 0) {
            if (errno == EINTR) continue;
            fail("cannot write");
        }
        done += static_cast<std::size_t>(w);
    }
    // A failed fsync is final for this checkpoint: the kernel may have dropped the dirty
    // pages, so retrying would report success for data that is not on disk.
    if (::fsync(fd) != 0) fail("fsync failed for");
    if (::fchmod(fd, 0644) != 0) fail("cannot set permissions of");
    if (::close(fd) != 0) {
        const int saved = errno;
        ::unlink(tmp.c_str());
        errno = saved;
        sys_fail("close failed for", tmp);
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const int saved = errno;
        ::unlink(tmp.c_str());
        errno = saved;
        sys_fail("cannot rename the temporary file onto", path);
    }
    const int dfd = ::open(dir_of(path).c_str(), O_RDONLY | O_DIRECTORY);
    if (dfd < 0) sys_fail("cannot open the directory of", path);
    if (::fsync(dfd) != 0) {
        const int saved = errno;
        ::close(dfd);
        errno = saved;
        sys_fail("fsync of the directory failed for", path);
    }
    ::close(dfd);
}

}  // namespace recalign::checkpoint
