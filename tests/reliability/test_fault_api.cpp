// checkpoint::save_file under injected write / fsync / close / rename failures (the
// fault_shim LD_PRELOADed by meson, tests/reliability/README.md): the error is a
// std::system_error carrying the injected errno and naming the file, the previous
// checkpoint is byte for byte what it was and still loads, and no temporary file remains.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include <recalign/io/files.hpp>
#include <recalign/stats/moments.hpp>

using namespace recalign;

namespace {

moment_accumulator state_of(std::size_t n) {
    const std::size_t d = 5, classes = 3;
    moment_accumulator m({d, target_mode::class_ids, classes});
    std::vector<double> x(n * d);
    std::vector<std::int64_t> y(n);
    for (std::size_t r = 0; r < n; ++r) {
        for (std::size_t c = 0; c < d; ++c) x[r * d + c] = static_cast<double>((r * 7 + c * 13) % 11) - 0.5 * c;
        y[r] = static_cast<std::int64_t>(r % classes);
    }
    m.update(batch_view(x.data(), n, d), target_view::class_ids(y.data(), n));
    return m;
}

std::string bytes_of(const moment_accumulator& m) {
    std::ostringstream os(std::ios::binary);
    m.save(os);
    return os.str();
}

std::string read_all(const std::string& path) {
    std::ifstream is(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(is)), std::istreambuf_iterator<char>());
}

std::vector<std::string> entries(const std::string& dir) {
    std::vector<std::string> names;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (const dirent* e = ::readdir(d)) {
            const std::string n = e->d_name;
            if (n != "." && n != "..") names.push_back(n);
        }
        ::closedir(d);
    }
    return names;
}

std::vector<std::string> lines_of(const std::string& path) {
    std::vector<std::string> out;
    std::ifstream is(path);
    for (std::string l; std::getline(is, l);) out.push_back(l);
    return out;
}

// Points the preloaded shim at `match`, failing the nth call of `op` (empty: only log).
void configure(const std::string& match, const std::string& op, int nth, const char* err, const std::string& log) {
    using reset_fn = void (*)();
    void* sym = ::dlsym(RTLD_DEFAULT, "recalign_fault_shim_reset");
    // Without the shim every test below would pass vacuously: refuse to run instead.
    REQUIRE(sym != nullptr);
    ::setenv("RECALIGN_FAULT_MATCH", match.c_str(), 1);
    ::setenv("RECALIGN_FAULT_OP", op.c_str(), 1);
    ::setenv("RECALIGN_FAULT_NTH", std::to_string(nth).c_str(), 1);
    ::setenv("RECALIGN_FAULT_ERRNO", err, 1);
    ::setenv("RECALIGN_FAULT_LOG", log.c_str(), 1);
    ::unsetenv("RECALIGN_FAULT_SHORT");
    reset_fn reset;
    static_assert(sizeof reset == sizeof sym, "function and object pointers differ in size");
    std::memcpy(&reset, &sym, sizeof sym);
    reset();
}

void disarm() {
    ::unsetenv("RECALIGN_FAULT_MATCH");
    ::unsetenv("RECALIGN_FAULT_OP");
    ::unsetenv("RECALIGN_FAULT_LOG");
    void* sym = ::dlsym(RTLD_DEFAULT, "recalign_fault_shim_reset");
    if (sym) {
        void (*reset)();
        std::memcpy(&reset, &sym, sizeof sym);
        reset();
    }
}

std::string make_dir() {
    char tmpl[] = "/tmp/recalign-fault-api-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    return tmpl;
}

}  // namespace

TEST_CASE("a failed write, fsync, close or rename keeps the previous checkpoint", "[reliability][faults]") {
    struct fault {
        const char* op;
        const char* err;
        int code;
        const char* words;  // what the message says about the operation
    };
    const fault faults[] = {
        {"write", "ENOSPC", ENOSPC, "cannot write"},
        {"fsync", "EIO", EIO, "fsync"},
        {"close", "EIO", EIO, "close"},
        {"rename", "EIO", EIO, "rename"},
    };
    // Without the shim every check below would pass vacuously: refuse to run instead.
    REQUIRE(::dlsym(RTLD_DEFAULT, "recalign_fault_shim_reset") != nullptr);
    for (const fault& f : faults) {
        DYNAMIC_SECTION(f.op << " " << f.err) {
            const std::string dir = make_dir();
            const std::string path = dir + "/state.ckpt";
            const std::string log = dir + "/shim.log";  // does not match path + ".tmp."
            const moment_accumulator first = state_of(40), second = state_of(90);
            const std::string first_bytes = bytes_of(first);

            // The first save passes, the second fails: its first call of each op (a save writes
            // the state in the pieces checkpoint::write_to hands over: one write call each).
            int writes = 0;
            checkpoint::write_to(first, [&writes](const char*, std::size_t) { ++writes; });
            configure(path + ".tmp.", f.op, std::string(f.op) == "write" ? writes + 1 : 2, f.err, log);
            checkpoint::save_file(path, first);
            REQUIRE(read_all(path) == first_bytes);
            bool threw = false;
            try {
                checkpoint::save_file(path, second);
            } catch (const std::system_error& e) {
                threw = true;
                CHECK(e.code().value() == f.code);
                CHECK_THAT(e.what(), Catch::Contains(path) && Catch::Contains(f.words));
            }
            CHECK(threw);
            const std::vector<std::string> calls = lines_of(log);
            disarm();

            // The previous checkpoint: same bytes, still loads to the same state.
            CHECK(read_all(path) == first_bytes);
            const moment_accumulator back = checkpoint::load_file<moment_accumulator>(path);
            CHECK(back.n() == 40);
            CHECK(bytes_of(back) == first_bytes);
            // Nothing but the checkpoint and the shim's log in the directory.
            std::vector<std::string> names = entries(dir);
            std::sort(names.begin(), names.end());
            CHECK(names == std::vector<std::string>{"shim.log", "state.ckpt"});

            // The log: the failing call is the last call of its kind on the second temp file,
            // and that temp file was never renamed (nor, for fsync, fsynced twice).
            std::string failing_tmp;
            for (const std::string& l : calls)
                if (l.rfind(std::string(f.op) + " ", 0) == 0 && l.find(" fail ") != std::string::npos)
                    failing_tmp = l.substr(std::strlen(f.op) + 1, l.find(' ', std::strlen(f.op) + 1) - std::strlen(f.op) - 1);
            INFO("shim log:\n" << [&] {
                std::string s;
                for (const auto& l : calls) s += l + "\n";
                return s;
            }());
            REQUIRE_FALSE(failing_tmp.empty());
            CHECK(failing_tmp.rfind(path + ".tmp.", 0) == 0);
            int fsyncs = 0, renames = 0;
            for (const std::string& l : calls) {
                if (l.rfind("fsync " + failing_tmp + " ", 0) == 0) ++fsyncs;
                if (l.rfind("rename " + failing_tmp + " ", 0) == 0) ++renames;
            }
            if (std::string(f.op) == "rename") {
                CHECK(renames == 1);
            } else {
                CHECK(renames == 0);
            }
            if (std::string(f.op) == "write") {
                CHECK(fsyncs == 0);
            } else {
                CHECK(fsyncs == 1);
            }

            // The next save, without a fault, replaces the file as usual.
            checkpoint::save_file(path, second);
            CHECK(read_all(path) == bytes_of(second));
            ::unlink(log.c_str());
            ::unlink(path.c_str());
            ::rmdir(dir.c_str());
        }
    }
}
