// A fresh directory under /tmp for one test, removed with everything in it when the test ends.
#pragma once

#include <catch2/catch.hpp>

#include <stdlib.h>

#include <cstdlib>
#include <string>

namespace testing {

struct temp_dir {
    std::string path;
    // `prefix` names the test's files in /tmp (e.g. "recalign-lock").
    explicit temp_dir(const std::string& prefix) {
        std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~temp_dir() { std::system(("rm -rf '" + path + "'").c_str()); }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
};

}  // namespace testing
