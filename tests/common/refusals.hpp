// The bad-input property of the README's policy, shared by the test programs that check it:
// a refused call throws the expected type naming what was wrong, leaves the state's saved
// bytes as they were, and the state then continues to the bits of one that never saw it.
#pragma once

#include <catch2/catch.hpp>

#include <functional>
#include <string>
#include <vector>

#include "helpers.hpp"

namespace testing {

// Runs f, which must throw E; returns its message (an empty string and a failed check otherwise).
template <class E, class F>
std::string message_of(F&& f) {
    try {
        f();
    } catch (const E& e) {
        return e.what();
    }
    FAIL_CHECK("no exception was thrown");
    return {};
}

inline void names_all(const std::string& msg, const std::vector<std::string>& parts) {
    INFO("message: " << msg);
    for (const std::string& p : parts) CHECK_THAT(msg, Catch::Contains(p));
}

// make() builds the state from scratch; bad(state) must throw E naming `parts`; afterwards
// the saved bytes are identical, and good(state) ends bit-identical to a fresh make() +
// good() that never saw the bad input.
template <class E, class T>
void refused_then_continues(const std::function<T()>& make, const std::function<void(T&)>& bad,
                            const std::function<void(T&)>& good, const std::vector<std::string>& parts) {
    T state = make();
    const std::string before = saved(state);
    names_all(message_of<E>([&] { bad(state); }), parts);
    CHECK(saved(state) == before);
    good(state);
    T reference = make();
    good(reference);
    CHECK(saved(state) == saved(reference));
}

}  // namespace testing
