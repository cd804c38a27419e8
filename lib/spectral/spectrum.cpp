#include "recalign/spectral/spectrum.hpp"

#include <algorithm>
#include <stdexcept>

#include "recalign/spectral/eigen.hpp"
#include "recalign/spectral/statistics.hpp"

namespace recalign {

const char* route_name(route r) {
    switch (r) {
        case route::exact: return "exact";
        case route::frequent_directions: return "fd";
        case route::nystrom: return "nystrom";
    }
    return "unknown";
}

route parse_route(const std::string& s) {
    for (route r : {route::exact, route::frequent_directions, route::nystrom})
        if (s == route_name(r)) return r;
    throw std::invalid_argument("unknown method '" + s + "' (expected exact, fd or nystrom)");
}

const char* solver_status_name(solver_status s) {
    switch (s) {
        case solver_status::converged: return "converged";
        case solver_status::not_converged: return "not_converged";
        case solver_status::breakdown: return "breakdown";
    }
    return "unknown";
}

solver_status solver_status_of(int info) noexcept {
    return info == 0 ? solver_status::converged : solver_status::not_converged;
}

solver_status worst(solver_status a, solver_status b) noexcept { return a != solver_status::converged ? a : b; }

spectrum exact_spectrum(const moment_accumulator& m, centering c) { return finish(m, c).spec; }

spectrum exact_eigenvalues(moment_accumulator&& m, centering c) {
    spectrum s;
    s.center = c;
    s.n = m.n();
    s.dim = m.dim();
    s.total = m.trace_xx(c);
    eigen_result e = sym_eigenvalues_consuming(std::move(m).release_sxx(c));
    s.status = solver_status_of(e.info);
    s.eigenvalues = std::move(e.values);
    s.basis = std::move(e.vectors);
    s.explained = explained_fractions(s.eigenvalues, s.total);
    clip_negative_eigenvalues(s);
    return s;
}

void clip_negative_eigenvalues(spectrum& s) {
    for (std::size_t i = 0; i < s.eigenvalues.size(); ++i)
        if (s.eigenvalues(i) < 0.0) {
            s.most_negative = std::min(s.most_negative, s.eigenvalues(i));
            s.eigenvalues(i) = 0.0;
            ++s.clipped;
        }
    if (s.clipped) s.explained = explained_fractions(s.eigenvalues, s.total);
}

}  // namespace recalign
