// Replays fuzz inputs through one harness's LLVMFuzzerTestOneInput, without libFuzzer: the
// committed seed corpus and regression inputs run as ordinary tests of the normal suite.
//
//   fuzz-replay-<harness> <dir or file>...   (directories are walked recursively; a missing
//                                              path is skipped; no input at all is a failure)
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <new>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace fs = std::filesystem;

// As under libFuzzer's -malloc_limit_mb=512: one allocation above 512 MB is a bug (a reader
// trusted a size it had not checked against the input), even where the system would grant
// it or the library would turn the failure into std::bad_alloc.
namespace {
constexpr std::size_t malloc_limit = std::size_t(512) << 20;
void* checked_alloc(std::size_t size) {
    if (size > malloc_limit) {
        std::fprintf(stderr, "fuzz replay: allocation of %zu bytes exceeds the 512 MB limit\n", size);
        std::abort();
    }
    if (void* p = std::malloc(size ? size : 1)) return p;
    throw std::bad_alloc();
}
}  // namespace
void* operator new(std::size_t size) { return checked_alloc(size); }
void* operator new[](std::size_t size) { return checked_alloc(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

int main(int argc, char** argv) {
    std::vector<fs::path> inputs;
    for (int i = 1; i < argc; ++i) {
        const fs::path p(argv[i]);
        if (fs::is_regular_file(p)) {
            inputs.push_back(p);
        } else if (fs::is_directory(p)) {
            for (const auto& e : fs::recursive_directory_iterator(p))
                if (e.is_regular_file() && e.path().filename().string()[0] != '.') inputs.push_back(e.path());
        }
    }
    std::sort(inputs.begin(), inputs.end());
    for (const auto& p : inputs) {
        std::ifstream in(p, std::ios::binary);
        const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        std::fprintf(stderr, "%s (%zu bytes)\n", p.c_str(), bytes.size());
        // A copy of exactly the input's size, so that an overread shows up as it would under libFuzzer.
        std::vector<std::uint8_t> copy(bytes.begin(), bytes.end());
        LLVMFuzzerTestOneInput(copy.empty() ? nullptr : copy.data(), copy.size());
    }
    std::printf("replayed %zu inputs\n", inputs.size());
    return inputs.empty() ? 1 : 0;
}
