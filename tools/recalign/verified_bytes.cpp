#include "verified_bytes.hpp"

#include <cstring>
#include <memory>
#include <stdexcept>
#include <utility>

#include "recalign/core/checked.hpp"
#include "recalign/core/errors.hpp"
#include "recalign/io/spill.hpp"

namespace recalign::cli {

// A basis as bytes: [u64 rows][u64 cols][row-major doubles] (rank 0 -> every rank).
std::string matrix_bytes(const matrix_t& m) {
    std::string s;
    put_u64(s, m.shape(0));
    put_u64(s, m.shape(1));
    if (m.size()) s.append(reinterpret_cast<const char*>(m.data()), m.size() * sizeof(double));
    return s;
}

matrix_t bytes_matrix(const std::string& s) {
    std::uint64_t rows = 0, cols = 0;
    if (s.size() < 16) throw std::logic_error("verified_state: rank 0's basis is truncated");
    std::memcpy(&rows, s.data(), 8);
    std::memcpy(&cols, s.data() + 8, 8);
    if (s.size() - 16 != checked_mul(checked_mul(rows, cols, "basis"), 8, "basis"))
        throw std::logic_error("verified_state: rank 0's basis has the wrong size");
    matrix_t m = xt::empty<double>({static_cast<std::size_t>(rows), static_cast<std::size_t>(cols)});
    if (m.size()) std::memcpy(m.data(), s.data() + 16, s.size() - 16);  // an empty matrix's data() may be null
    return m;
}

// Restricted statistics as bytes (incremental refinement's carried and final statistics).
void put_f64(std::string& out, double v) {
    std::uint64_t u = 0;
    std::memcpy(&u, &v, 8);
    put_u64(out, u);
}
double get_f64(state_reader& r) {
    const std::uint64_t u = r.u64();
    double v = 0;
    std::memcpy(&v, &u, 8);
    return v;
}
void put_vector(std::string& out, const vector_t& v) {
    put_u64(out, v.size());
    for (double x : v) put_f64(out, x);
}
vector_t get_vector(state_reader& r) {
    const std::uint64_t n = r.u64();
    if (n > r.bytes.size() / 8) r.truncated();
    vector_t v = xt::zeros<double>({static_cast<std::size_t>(n)});
    for (double& x : v) x = get_f64(r);
    return v;
}

namespace {
// The refinement statistics are appended to the checkpoint's bytes in place (a checkpoint
// written during a refinement pass would otherwise hold the carried [R, T] and [Sxx R, 0],
// read back from disk, two or three times over): matrix_bytes's layout, the spilled ones read
// from their files straight into the string, whose room is reserved first (statistics_size).
void append_matrix(std::string& out, std::size_t rows, std::size_t cols, const double* data) {
    put_u64(out, 16 + checked_mul(checked_mul(rows, cols, "basis"), 8, "basis"));  // put_part's length
    put_u64(out, rows);
    put_u64(out, cols);
    if (rows && cols) out.append(reinterpret_cast<const char*>(data), rows * cols * sizeof(double));
}
void append_spilled(std::string& out, const io::row_spill& f) {
    const std::size_t bytes = checked_mul(checked_mul(f.rows(), f.cols(), "basis"), 8, "basis");
    put_u64(out, 16 + bytes);
    put_u64(out, f.rows());
    put_u64(out, f.cols());
    const std::size_t at = out.size();
    out.resize(at + bytes);
    if (bytes) f.read_rows(0, f.rows(), reinterpret_cast<double*>(&out[at]));
}
void append_matrix(std::string& out, const matrix_t& m) { append_matrix(out, m.shape(0), m.shape(1), m.data()); }
std::size_t matrix_size(std::size_t rows, std::size_t cols) { return 24 + rows * cols * sizeof(double); }
}  // namespace

// `spilled`: the pass whose basis is on disk (s is its `known`); Sxx V may be on disk (sv_stored).
// The statistics as one part ([u64 length][bytes]) appended to `out`.
std::size_t statistics_size(const restricted_statistics& s, const refinement_pass* spilled) {
    const bool disk = spilled && spilled->spilled();
    std::size_t n = 16;
    n += disk ? matrix_size(spilled->stored_basis->rows(), spilled->stored_basis->cols())
              : matrix_size(s.basis.shape(0), s.basis.shape(1));
    n += s.sv_stored ? matrix_size(s.sv_stored->rows(), s.sv_stored->cols()) : matrix_size(s.sv.shape(0), s.sv.shape(1));
    for (const matrix_t* m : {&s.vsv, &s.gram, &s.svsv}) n += matrix_size(m->shape(0), m->shape(1));
    n += 8;
    if (s.cross)
        n += 16 + matrix_size(s.cross->sxy.shape(0), s.cross->sxy.shape(1)) +
             matrix_size(s.cross->syy.shape(0), s.cross->syy.shape(1)) + 8 + 8 * s.cross->class_counts.size();
    return 8 + n;
}
void append_statistics(std::string& out, const restricted_statistics& s, const refinement_pass* spilled) {
    const std::size_t start = out.size(), size = statistics_size(s, spilled);
    put_u64(out, size - 8);
    put_u64(out, static_cast<std::uint64_t>(s.center));
    put_u64(out, s.n);
    const bool disk = spilled && spilled->spilled();
    if (disk) append_spilled(out, *spilled->stored_basis);
    else append_matrix(out, s.basis);
    if (s.sv_stored) append_spilled(out, *s.sv_stored);
    else append_matrix(out, s.sv);
    for (const matrix_t* m : {&s.vsv, &s.gram, &s.svsv}) append_matrix(out, *m);
    put_u64(out, s.cross ? 1 : 0);
    if (s.cross) {
        put_u64(out, static_cast<std::uint64_t>(s.cross->center));
        put_u64(out, s.cross->n);
        append_matrix(out, s.cross->sxy);
        append_matrix(out, s.cross->syy);
        put_vector(out, s.cross->class_counts);
    }
    if (out.size() - start != size) throw std::logic_error("verified_state: the refinement statistics' size");
}
// `at`: where `bytes` start in the file `source` (the offsets of its errors). `carried`: a
// refinement pass's known statistics (the D x K basis and Sxx V; the products only of its
// first `carried` columns); none: a whole pass's (K x K products). complete_pass and the
// analyses index every matrix by the basis's D and K without checking (the carried part has
// no checksum of its own): a matrix that does not fit is refused at its offset.
restricted_statistics bytes_statistics(const std::string& bytes, const std::string& source, std::uint64_t at,
                                       std::optional<std::uint64_t> carried) {
    state_reader r{bytes, source, "verified state (refinement statistics)"};
    auto here = [&] { return at + (bytes.size() - r.bytes.size()); };
    auto centering_of = [&](const char* what) {
        const std::uint64_t where = here(), c = r.u64();
        if (c != 1 && c != 2)
            throw file_error(source, where, std::string("the refinement statistics' ") + what + " is " +
                                                std::to_string(c) + ", neither uncentered (1) nor centered (2)");
        return static_cast<centering>(c);
    };
    auto fits = [&](const matrix_t& m, std::uint64_t where, const char* what, std::size_t rows, std::size_t cols,
                    bool empty_ok) {
        if ((m.shape(0) == rows && m.shape(1) == cols) || (empty_ok && m.size() == 0)) return;
        throw file_error(source, where, std::string("the refinement statistics' matrices do not fit their basis (") +
                                            what + " " + std::to_string(m.shape(0)) + " x " + std::to_string(m.shape(1)) +
                                            " where " + std::to_string(rows) + " x " + std::to_string(cols) + ")");
    };
    restricted_statistics s;
    s.center = centering_of("centering");
    s.n = r.u64();
    std::uint64_t where[5] = {};
    std::size_t i = 0;
    for (matrix_t* m : {&s.basis, &s.sv, &s.vsv, &s.gram, &s.svsv}) {
        where[i++] = here();
        *m = bytes_matrix(r.part());
    }
    const std::size_t d = s.basis.shape(0), m = s.basis.shape(1);
    if (carried && *carried >= m)  // a pass being read has new directions (fresh(): D x (K - carried))
        throw file_error(source, where[0], "the carried statistics do not fit their basis (" + std::to_string(*carried) +
                                               " carried of " + std::to_string(m) +
                                               " columns: a pass being read has new directions)");
    const std::size_t k = carried ? static_cast<std::size_t>(*carried) : m;
    fits(s.sv, where[1], "Sxx V", d, m, false);
    fits(s.vsv, where[2], "V' Sxx V", k, k, false);
    fits(s.gram, where[3], "Gram", k, k, true);  // before its products: none
    fits(s.svsv, where[4], "Gram products", k, k, s.gram.size() == 0);
    if (r.u64()) {
        cross_moments c;
        c.center = centering_of("cross moments' centering");
        c.n = r.u64();
        const std::uint64_t sxy_at = here();
        c.sxy = bytes_matrix(r.part());
        fits(c.sxy, sxy_at, "Sxy", k, c.sxy.shape(1), false);
        const std::size_t nc = c.sxy.shape(1);
        const std::uint64_t syy_at = here();
        c.syy = bytes_matrix(r.part());
        fits(c.syy, syy_at, "Syy", nc, nc, true);  // class ids: Syy described by the class counts
        const std::uint64_t counts_at = here();
        c.class_counts = get_vector(r);
        if (c.class_counts.size() != (c.syy.size() ? 0 : nc))
            throw file_error(source, counts_at, "the refinement statistics' class counts do not fit their classes");
        s.cross = std::move(c);
    }
    if (!r.bytes.empty()) r.truncated();
    if (s.gram.size()) s.frame = std::make_shared<const matrix_t>(s.gram);
    return s;
}

}  // namespace recalign::cli
