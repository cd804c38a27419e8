#include "run_state.hpp"

#include <fstream>
#include <sstream>

#include "recalign/core/errors.hpp"

namespace recalign::cli {

std::uint64_t run_config::hash() const {
    fnv1a h;
    h.add(std::string_view("recalign cli_run"))
        .add(std::string_view(method))
        .add(dim)
        .add(classes)
        .add(scale)
        .add(rank)
        .add(passes)
        .add(seed)
        .add(static_cast<std::uint64_t>(center));
    if (test_matrix != "signs") h.add(std::string_view("test matrix")).add(std::string_view(test_matrix));
    return h.value();
}

namespace {
std::string num(double v) {
    std::ostringstream os;
    os.precision(17);
    os << v;
    return os.str();
}
}  // namespace

std::string run_config::difference(const run_config& o, const std::string& mine, const std::string& theirs) const {
    auto diff = [&](const std::string& what, const std::string& a, const std::string& b) {
        return what + " is " + a + " in " + mine + " but " + b + " in " + theirs;
    };
    if (method != o.method) return diff("--method", method, o.method);
    if (dim != o.dim)  // decoded images: --crop, --resize and --channels decide D
        return diff("the row width D", std::to_string(dim), std::to_string(o.dim)) +
               " (other data, or for images another --crop, --resize or --channels)";
    if (classes != o.classes) return diff("the number of classes", std::to_string(classes), std::to_string(o.classes));
    if (scale != o.scale) return diff("--scale", num(scale), num(o.scale));
    if (rank != o.rank) return diff("--rank", std::to_string(rank), std::to_string(o.rank));
    if (passes != o.passes)
        return diff("--passes", std::to_string(passes), std::to_string(o.passes)) +
               (o.default_passes ? " (this run's is its command's default: give --passes " + std::to_string(passes) +
                                       " to continue it)"
                                     : "");
    if (seed != o.seed) return diff("--seed", std::to_string(seed), std::to_string(o.seed));
    if (test_matrix != o.test_matrix) return diff("--test-matrix", test_matrix, o.test_matrix);
    if (center != o.center) return diff("the centering", center == 1 ? "centered" : "uncentered",
                                        o.center == 1 ? "centered" : "uncentered");
    return {};
}

bool run_state::complete(std::uint64_t passes) const {
    for (const input_segment& s : segments) {
        if (s.pass + 1 < passes) return false;
        if (s.pass + 1 == passes && s.rows_done != s.rows_total) return false;
    }
    return true;
}

run_state load_run_state(const std::string& path) {
    std::ifstream is(path, std::ios::binary);
    if (!is) throw file_error(path, "cannot open checkpoint for reading");
    return run_state::load(is, path);
}

}  // namespace recalign::cli
