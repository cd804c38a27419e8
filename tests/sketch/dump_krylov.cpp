// Dumps block Krylov and subspace-iteration Nyström results on a small synthetic power-law
// data set, with the data, Ω and the probes, as JSON for krylov_oracle.py (the NumPy oracle).
//   dump_krylov D N K P PASSES
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <recalign/sketch/nystrom_sketch.hpp>

#include "sketch_helpers.hpp"

using namespace recalign;

namespace {
void list(const char* name, const double* v, std::size_t n, bool comma = true) {
    std::printf("\"%s\": [", name);
    for (std::size_t i = 0; i < n; ++i) std::printf("%s%.17g", i ? ", " : "", v[i]);
    std::printf("]%s", comma ? ", " : "");
}
}  // namespace

int main(int argc, char** argv) {
    if (argc != 6) {
        std::fprintf(stderr, "usage: dump_krylov D N K P PASSES\n");
        return 2;
    }
    const std::size_t d = std::stoul(argv[1]), n = std::stoul(argv[2]), k = std::stoul(argv[3]), p = std::stoul(argv[4]),
                      passes = std::stoul(argv[5]);
    const std::vector<double> x = sketch_testing::synthetic(sketch_testing::decay::power_law, n, d, 17);
    nystrom_options o = sketch_testing::nystrom_opts(d, k, p, 3, 10);
    std::printf("{\"d\": %zu, \"n\": %zu, \"k\": %zu, \"s\": %zu, ", d, n, k, k + p);
    list("x", x.data(), x.size());
    {
        const nystrom_sketch fresh(o);
        const matrix_t t = fresh.test_matrix();  // [Ω | G], D x (s + probes)
        list("test", t.data(), t.size());
    }
    std::printf("\"runs\": [");
    bool first = true;
    for (std::size_t blocks : {std::size_t{1}, passes}) {
        o.blocks = blocks;
        nystrom_sketch sk(o);
        for (std::size_t q = 1; q <= passes; ++q) {
            if (q > 1) sk.next_pass();
            sketch_testing::feed(sk, x, d, 0, n, 37);
            const spectrum sp = nystrom_spectrum(sk);
            std::printf("%s{\"blocks\": %zu, \"passes\": %zu, \"trace\": %.17g, \"error_estimate\": %.17g, ", first ? "" : ", ",
                        blocks, q, sp.total, sp.error_estimate);
            list("eigenvalues", sp.eigenvalues.data(), sp.eigenvalues.size());
            list("basis", sp.basis.data(), sp.basis.size(), false);
            std::printf("}");
            first = false;
        }
    }
    std::printf("]}\n");
    return 0;
}
