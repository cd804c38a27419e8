// Shared helpers of the unit tests: deterministic random data and a direct, independent
// (two-pass, long double) computation of the moments to compare the accumulator against.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <recalign/core/rng.hpp>
#include <recalign/core/xt.hpp>

namespace testing {

// The process's peak resident set in kB since the last reset_peak_rss(): VmHWM of
// /proc/self/status, which Linux resets to the current resident set when "5" is written to
// /proc/self/clear_refs. So an earlier test's peak cannot hide this one's, as getrusage's
// lifetime maximum would. -1 where the field is missing.
inline void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }
inline long peak_rss_kb() {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

// n x d doubles with per-column offsets and scales (so centering matters), deterministic.
inline std::vector<double> random_rows(std::size_t n, std::size_t d, std::uint64_t seed, double offset = 3.0) {
    std::vector<double> x(n * d);
    for (std::size_t r = 0; r < n; ++r) {
        recalign::rng::stream s(seed, 0, r);
        for (std::size_t c = 0; c < d; ++c)
            x[r * d + c] = offset * (1.0 + 0.1 * static_cast<double>(c)) + (1.0 + static_cast<double>(c % 5)) * s.normal(c);
    }
    return x;
}

inline std::vector<std::int64_t> random_labels(std::size_t n, std::size_t classes, std::uint64_t seed) {
    std::vector<std::int64_t> y(n);
    recalign::rng::stream s(seed, 1, 0);
    for (std::size_t r = 0; r < n; ++r) y[r] = static_cast<std::int64_t>(s.bits(r) % classes);
    return y;
}

// Direct centered / uncentered second moments of rows (long double two-pass).
struct direct_moments {
    std::vector<long double> mean;
    std::vector<long double> centered;    // d x d
    std::vector<long double> uncentered;  // d x d
};

inline direct_moments direct(const std::vector<double>& x, std::size_t n, std::size_t d) {
    direct_moments m;
    m.mean.assign(d, 0.0L);
    for (std::size_t r = 0; r < n; ++r)
        for (std::size_t c = 0; c < d; ++c) m.mean[c] += x[r * d + c];
    for (auto& v : m.mean) v /= static_cast<long double>(n);
    m.centered.assign(d * d, 0.0L);
    m.uncentered.assign(d * d, 0.0L);
    for (std::size_t r = 0; r < n; ++r)
        for (std::size_t i = 0; i < d; ++i)
            for (std::size_t j = 0; j < d; ++j) {
                const long double xi = x[r * d + i], xj = x[r * d + j];
                m.uncentered[i * d + j] += xi * xj;
                m.centered[i * d + j] += (xi - m.mean[i]) * (xj - m.mean[j]);
            }
    return m;
}

// Max |a - b| / max(1, max|b|) over two containers of the same size.
template <class A, class B>
double rel_diff(const A& a, const B& b) {
    long double num = 0, den = 1;
    auto ia = a.begin();
    for (auto ib = b.begin(); ib != b.end(); ++ib, ++ia) {
        num = std::max(num, std::fabs(static_cast<long double>(*ia) - static_cast<long double>(*ib)));
        den = std::max(den, std::fabs(static_cast<long double>(*ib)));
    }
    return static_cast<double>(num / den);
}

// Bitwise equality of two tensors (shape and every bit of every element).
template <class A, class B>
bool bit_equal(const A& a, const B& b) {
    if (a.shape() != b.shape()) return false;
    return a.size() == 0 || std::memcmp(a.data(), b.data(), a.size() * sizeof(*a.data())) == 0;
}

template <class T>
std::string saved(const T& obj) {
    std::ostringstream os(std::ios::binary);
    obj.save(os);
    return os.str();
}

template <class T>
T loaded(const std::string& bytes) {
    std::istringstream is(bytes, std::ios::binary);
    return T::load(is);
}

}  // namespace testing
