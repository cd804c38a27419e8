#include <catch2/catch.hpp>

#include <cmath>

#include <recalign/core/rng.hpp>

using recalign::rng::stream;

TEST_CASE("Philox4x32-10 matches the Random123 known-answer vectors", "[rng]") {
    // Known-answer tests from Random123's kat_vectors (philox4x32, 10 rounds).
    auto r = recalign::rng::philox(0, 0, 0, 0, 0);
    CHECK(r == recalign::rng::block{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u});
    r = recalign::rng::philox(0xffffffffffffffffULL, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu);
    CHECK(r == recalign::rng::block{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu});
}

TEST_CASE("streams are pure functions of (seed, a, b, i)", "[rng]") {
    const stream s(42, 3, 7);
    CHECK(s.bits(5) == stream(42, 3, 7).bits(5));
    CHECK(s.bits(5) != stream(43, 3, 7).bits(5));
    CHECK(s.bits(5) != stream(42, 4, 7).bits(5));
    CHECK(s.bits(5) != stream(42, 3, 8).bits(5));
    CHECK(s.bits(5) != s.bits(6));
}

TEST_CASE("uniform and normal draws have the right moments", "[rng]") {
    const stream s(7, 0, 0);
    const int n = 200000;
    double su = 0, su2 = 0, sn = 0, sn2 = 0, sn4 = 0;
    for (int i = 0; i < n; ++i) {
        const double u = s.uniform(i), z = s.normal(i);
        REQUIRE(u >= 0.0);
        REQUIRE(u < 1.0);
        su += u;
        su2 += u * u;
        sn += z;
        sn2 += z * z;
        sn4 += z * z * z * z;
    }
    CHECK(std::abs(su / n - 0.5) < 4 * std::sqrt(1.0 / 12 / n));
    CHECK(std::abs(su2 / n - 1.0 / 3) < 0.005);
    CHECK(std::abs(sn / n) < 4 / std::sqrt(double(n)));
    CHECK(std::abs(sn2 / n - 1.0) < 4 * std::sqrt(2.0 / n));
    CHECK(std::abs(sn4 / n - 3.0) < 0.1);
}
