#pragma once
// What a spill test looks at: the names left in a directory, and this process's descriptors of
// unlinked files in it (tests/io/test_spill.cpp, test_spill_faults.cpp).

#include <catch2/catch.hpp>

#include <dirent.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace testing {

inline std::size_t entries(const std::string& dir) {
    std::size_t n = 0;
    DIR* d = ::opendir(dir.c_str());
    REQUIRE(d != nullptr);
    while (const dirent* e = ::readdir(d))
        if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) ++n;
    ::closedir(d);
    return n;
}

// The descriptors of this process that point at deleted files in `dir` (an unlinked spill).
inline std::size_t open_spills(const std::string& dir) {
    std::size_t n = 0;
    DIR* d = ::opendir("/proc/self/fd");
    REQUIRE(d != nullptr);
    while (const dirent* e = ::readdir(d)) {
        char target[4096] = {};
        const std::string link = std::string("/proc/self/fd/") + e->d_name;
        const ssize_t len = ::readlink(link.c_str(), target, sizeof target - 1);
        if (len > 0 && std::string(target).rfind(dir + "/", 0) == 0) ++n;
    }
    ::closedir(d);
    return n;
}

}  // namespace testing
