// Catch2 v2 declares its Session only where its implementation is compiled
// (catch_session.cpp): a main elsewhere runs the tests through this.
#pragma once

namespace testing {

// Catch::Session().run(argc, argv): the number of failed test cases, or Catch's error status.
int run_catch_session(int argc, char* argv[]);

}  // namespace testing
