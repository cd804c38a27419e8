#include "memory_trace.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <malloc.h>
#include <string>

namespace recalign::cli {

namespace {
const auto program_start = std::chrono::steady_clock::now();  // set before main runs

// The value in kB of `key` ("VmRSS:") in /proc/self/status (0 when unknown).
long status_kb(const std::string& text, const char* key) {
    const std::size_t at = text.find(key);
    return at == std::string::npos ? 0 : std::strtol(text.c_str() + at + std::strlen(key), nullptr, 10);
}
}  // namespace

void memory_mark(const char* phase) {
    static const bool on = [] {  // "" and "0" are off, as for a flag
        const char* v = std::getenv("RECALIGN_MEMORY_TRACE");
        return v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0;
    }();
    if (!on) return;
    std::ifstream in("/proc/self/status");
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // Every byte malloc holds is in its arenas or its own mappings (mallinfo2 counts all arenas):
    // the resident anonymous memory beyond those bytes is at least what others hold (OpenBLAS's
    // per-thread buffers, thread stacks). A lower bound: malloc's untouched pages count as its own.
    const struct mallinfo2 heap = mallinfo2();
    const long malloc_kb = static_cast<long>((heap.arena + heap.hblkhd) / 1024);
    const double at = std::chrono::duration<double>(std::chrono::steady_clock::now() - program_start).count();
    std::cerr << "memory: " << phase << ": VmRSS " << status_kb(text, "VmRSS:") << " kB, peak since the last mark "
              << status_kb(text, "VmHWM:") << " kB, anonymous outside malloc >= "
              << std::max(0L, status_kb(text, "RssAnon:") - malloc_kb) << " kB, at " << at << " s\n";
    std::ofstream("/proc/self/clear_refs") << "5";
}

void release_free_memory() { malloc_trim(0); }

}  // namespace recalign::cli
