// Block Krylov Nyström (nystrom_options::blocks > 1): bit-identical resume at any point,
// shards merging to one stream in a later pass, restarts (the block budget, D), refusals,
// truncations and byte flips of its checkpoints. Its results against NumPy: krylov_oracle.py.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <recalign/sketch/nystrom_sketch.hpp>

#include "sketch_helpers.hpp"

using namespace recalign;
using namespace sketch_testing;

namespace {
constexpr std::size_t D = 200, N = 1000;

nystrom_options opts(std::size_t d, std::size_t k, std::size_t p, std::size_t blocks, std::size_t probes = 5) {
    nystrom_options o = nystrom_opts(d, k, p, 11, probes);
    o.blocks = blocks;
    return o;
}

const std::vector<double>& data() {
    static const std::vector<double> x = synthetic(decay::power_law, N, D, 31);
    return x;
}
}  // namespace

TEST_CASE("Block Krylov: save/load at any point continues bit-identically", "[sketch][nystrom][krylov]") {
    const std::vector<double>& x = data();
    const nystrom_options o = opts(D, 6, 4, 3);
    nystrom_sketch straight(o);
    for (int q = 0; q < 3; ++q) {
        if (q) straight.next_pass();
        feed(straight, x, D, 0, N, 128);
    }
    CHECK(straight.krylov_basis().shape(1) == 2 * 10);
    CHECK(orthonormality_defect(straight.krylov_basis()) < 1e-12);

    nystrom_sketch a(o);
    feed(a, x, D, 0, 512, 128);  // cuts on batch boundaries: the same sums in the same order
    nystrom_sketch b = loaded<nystrom_sketch>(saved(a));  // mid pass 0
    feed(b, x, D, 512, N, 128);
    b.next_pass();
    nystrom_sketch c = loaded<nystrom_sketch>(saved(b));  // start of pass 1
    CHECK(saved(c) == saved(b));
    feed(c, x, D, 0, 256, 128);
    nystrom_sketch d = loaded<nystrom_sketch>(saved(c));  // mid pass 1
    feed(d, x, D, 256, N, 128);
    d.next_pass();
    feed(d, x, D, 0, 768, 128);
    nystrom_sketch e = loaded<nystrom_sketch>(saved(d));  // mid pass 2
    feed(e, x, D, 768, N, 128);
    CHECK(saved(e) == saved(straight));
    const spectrum s1 = nystrom_spectrum(straight), s2 = nystrom_spectrum(e);
    CHECK(std::memcmp(s1.eigenvalues.data(), s2.eigenvalues.data(), s1.rank() * sizeof(double)) == 0);
    CHECK(std::memcmp(s1.basis.data(), s2.basis.data(), s1.basis.size() * sizeof(double)) == 0);
    CHECK(std::memcmp(&s1.error_estimate, &s2.error_estimate, sizeof(double)) == 0);
}

TEST_CASE("Block Krylov: shards of a later pass merge to one stream; other block budgets are refused",
          "[sketch][nystrom][krylov]") {
    const std::vector<double>& x = data();
    const nystrom_options o = opts(D, 6, 4, 3);
    nystrom_sketch start(o);
    feed(start, x, D, 0, N, 200);
    start.next_pass();
    feed(start, x, D, 0, N, 200);
    start.next_pass();  // pass 2: two kept blocks
    const std::string bytes = saved(start);
    nystrom_sketch one = loaded<nystrom_sketch>(bytes), merged = loaded<nystrom_sketch>(bytes);
    feed(one, x, D, 0, N, 200);
    const std::size_t cuts[] = {0, 333, 801, N};
    for (int i = 0; i < 3; ++i) {
        nystrom_sketch shard = loaded<nystrom_sketch>(bytes);
        feed(shard, x, D, cuts[i], cuts[i + 1], 97);
        merged.merge(shard);
    }
    CHECK(rel_diff(merged.range(), one.range()) < 1e-12);
    const spectrum a = nystrom_spectrum(one), b = nystrom_spectrum(merged);
    for (std::size_t i = 0; i < a.rank(); ++i) CHECK(b.eigenvalues(i) == Approx(a.eigenvalues(i)).epsilon(1e-9));
    nystrom_sketch other(opts(D, 6, 4, 2));
    feed(other, x, D, 0, 10, 10);
    nystrom_sketch fresh(o);
    feed(fresh, x, D, 0, 10, 10);
    CHECK_THROWS_WITH(fresh.merge(other), Catch::Contains("Krylov blocks") && Catch::Contains("3") && Catch::Contains("2"));
    CHECK(other.config_hash() != fresh.config_hash());
}

TEST_CASE("Block Krylov: the basis restarts after its block budget and before exceeding D", "[sketch][nystrom][krylov]") {
    const std::vector<double>& x = data();
    for (auto [d, blocks] : {std::pair<std::size_t, std::size_t>{D, 2}, {25, 5}}) {
        INFO("D = " << d << ", blocks = " << blocks);
        std::vector<double> xs(N * d);
        for (std::size_t r = 0; r < N; ++r) std::memcpy(xs.data() + r * d, x.data() + r * D, d * sizeof(double));
        nystrom_sketch sk(opts(d, 6, 4, blocks));  // s = 10: two blocks fit in D = 25, three do not
        feed(sk, xs, d, 0, N, 250);
        sk.next_pass();
        CHECK(sk.krylov_basis().shape(1) == 10);
        feed(sk, xs, d, 0, N, 250);
        sk.next_pass();  // restart: the top s eigenvectors of pass 1's reconstruction
        CHECK(sk.krylov_basis().shape(1) == 0);
        feed(sk, xs, d, 0, N, 250);
        const spectrum sp = nystrom_spectrum(sk);
        CHECK(sp.status == solver_status::converged);
        CHECK(orthonormality_defect(sp.basis) < 1e-10);
        CHECK(nystrom_peak_bytes(sk.options()) > nystrom_peak_bytes(opts(d, 6, 4, 1)));
    }
}

TEST_CASE("Block Krylov: every truncation and every byte flip of a saved sketch throws", "[sketch][nystrom][krylov]") {
    const std::size_t d = 10;
    const std::vector<double> x = synthetic(decay::exponential, 30, d, 7);
    nystrom_sketch sk(opts(d, 2, 1, 3, 2));
    feed(sk, x, d, 0, 30, 7);
    sk.next_pass();
    feed(sk, x, d, 0, 12, 7);
    const std::string bytes = saved(sk);  // mid pass 1: Q, K and C K
    CHECK(first_accepted_damage<nystrom_sketch>(bytes) == "");
}
