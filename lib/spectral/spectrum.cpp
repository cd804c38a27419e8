#include "recalign/spectral/spectrum.hpp"

#include "recalign/spectral/eigen.hpp"

namespace recalign {

spectrum exact_spectrum(const moment_accumulator& m, centering c) {
    spectrum s;
    s.method = "exact";
    s.center = c;
    s.n = m.n();
    s.dim = m.dim();
    eigen_result e = sym_eigen(m.sxx(c));
    s.info = e.info;
    s.eigenvalues = std::move(e.values);
    s.basis = std::move(e.vectors);
    s.total = m.trace_xx(c);
    s.explained = explained_fractions(s.eigenvalues, s.total);
    return s;
}

}  // namespace recalign
