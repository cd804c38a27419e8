#include "recalign/core/batch.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "recalign/core/checked.hpp"
#include "recalign/core/errors.hpp"

namespace recalign {

const char* dtype_name(dtype t) {
    switch (t) {
        case dtype::u8: return "uint8";
        case dtype::f32: return "float32";
        case dtype::f64: return "float64";
    }
    return "unknown";
}

const char* image_layout_name(image_layout l) { return l == image_layout::chw ? "chw" : "hwc"; }

std::size_t dtype_size(dtype t) {
    switch (t) {
        case dtype::u8: return 1;
        case dtype::f32: return 4;
        case dtype::f64: return 8;
    }
    return 0;
}

namespace {

// Names where the batch starts (first_row), as every other refusal of a batch names its row.
void check_shape(const batch_view& b, std::size_t expected_cols, std::uint64_t first_row) {
    if (b.cols != expected_cols) {
        throw input_error("batch at row " + std::to_string(first_row) + " has " + std::to_string(b.cols) +
                          " columns, expected " + std::to_string(expected_cols) + " (the accumulator's dimension)");
    }
    if (b.rows > 0 && b.data == nullptr) throw input_error("batch data pointer is null");
    if (!std::isfinite(b.scale)) throw input_error("batch scale " + std::to_string(b.scale) + " is not finite");
}

[[noreturn]] void not_finite(std::uint64_t row, std::size_t col, double v) {
    throw input_error("row " + std::to_string(row) + ", column " + std::to_string(col) + ": value " +
                      std::to_string(v) + " is not finite (NaN or Inf)");
}

// The scale is applied in double after the conversion (x_double * scale): what a reader
// that scaled its rows itself used to hand over, bit for bit. A scaled integer can overflow
// only for |scale| near the double range, so every value is checked when the scale is not 1.
template <class In, class Out>
void convert(const In* in, std::size_t n, std::size_t cols, double scale, Out* out, std::uint64_t first_row) {
    for (std::size_t i = 0; i < n; ++i) {
        const double v = static_cast<double>(in[i]) * scale;
        if (!std::is_integral_v<In> || scale != 1.0) {
            if (!std::isfinite(v)) not_finite(first_row + i / cols, i % cols, v);
        }
        out[i] = static_cast<Out>(v);
    }
}

template <class Out>
void to_checked(const batch_view& b, std::size_t expected_cols, Out* out, std::uint64_t first_row) {
    check_shape(b, expected_cols, first_row);
    const std::size_t n = checked_elements<double>({b.rows, b.cols}, "batch rows x columns");
    switch (b.type) {
        case dtype::u8: convert(static_cast<const std::uint8_t*>(b.data), n, b.cols, b.scale, out, first_row); break;
        case dtype::f32: convert(static_cast<const float*>(b.data), n, b.cols, b.scale, out, first_row); break;
        case dtype::f64: convert(static_cast<const double*>(b.data), n, b.cols, b.scale, out, first_row); break;
        default: throw input_error("batch has an unknown element type");
    }
}

template <class In, class Out>
void shift_rows(const In* in, std::size_t rows, std::size_t cols, double scale, const double* shift, Out* out,
                std::size_t stride, double* sums) {
    for (std::size_t r = 0; r < rows; ++r) {
        const In* row = in + r * cols;
        Out* o = out + r * stride;
        for (std::size_t c = 0; c < cols; ++c) {
            const double v = static_cast<double>(row[c]) * scale - shift[c];
            o[c] = static_cast<Out>(v);
            sums[c] += v;
        }
    }
}

template <class In>
void locate_non_finite(const In* in, std::size_t rows, std::size_t cols, double scale, const double* shift,
                       std::uint64_t first_row) {
    for (std::size_t i = 0; i < rows * cols; ++i) {
        const double v = static_cast<double>(in[i]) * scale;
        if (!std::isfinite(v)) not_finite(first_row + i / cols, i % cols, v);
    }
    for (std::size_t c = 0; c < cols; ++c)
        if (!std::isfinite(shift[c])) throw input_error("column " + std::to_string(c) + ": shift is not finite");
    throw input_error("column sums overflow: values too large (magnitude near the double range)");
}

template <class Out>
void shifted(const batch_view& b, std::size_t expected_cols, const double* shift, Out* out, std::size_t stride,
             double* sums, std::uint64_t first_row) {
    check_shape(b, expected_cols, first_row);
    if (stride < expected_cols) throw std::invalid_argument("output stride smaller than the row width");
    checked_elements<double>({b.rows, b.cols}, "batch rows x columns");
    checked_elements<double>({b.rows, stride}, "batch rows x output stride");
    const std::size_t cols = b.cols;
    std::vector<double> local(cols, 0.0);
    auto run = [&](const auto* in) {
        shift_rows(in, b.rows, cols, b.scale, shift, out, stride, local.data());
        for (std::size_t c = 0; c < cols; ++c)
            if (!std::isfinite(local[c])) locate_non_finite(in, b.rows, cols, b.scale, shift, first_row);
    };
    switch (b.type) {
        case dtype::u8: run(static_cast<const std::uint8_t*>(b.data)); break;
        case dtype::f32: run(static_cast<const float*>(b.data)); break;
        case dtype::f64: run(static_cast<const double*>(b.data)); break;
        default: throw input_error("batch has an unknown element type");
    }
    for (std::size_t c = 0; c < cols; ++c) sums[c] += local[c];
}

}  // namespace

void to_shifted_checked(const batch_view& b, std::size_t expected_cols, const double* shift, double* out,
                        std::size_t out_stride, double* column_sums, std::uint64_t first_row) {
    shifted(b, expected_cols, shift, out, out_stride, column_sums, first_row);
}

void to_shifted_checked(const batch_view& b, std::size_t expected_cols, const double* shift, float* out,
                        std::size_t out_stride, double* column_sums, std::uint64_t first_row) {
    shifted(b, expected_cols, shift, out, out_stride, column_sums, first_row);
}

void to_double_checked(const batch_view& b, std::size_t expected_cols, double* out, std::uint64_t first_row) {
    to_checked(b, expected_cols, out, first_row);
}

void to_float_checked(const batch_view& b, std::size_t expected_cols, float* out, std::uint64_t first_row) {
    to_checked(b, expected_cols, out, first_row);
}

batch_view batch_rows(const batch_view& b, std::size_t first, std::size_t count) {
    batch_view v = b;
    if (b.data != nullptr) v.data = static_cast<const char*>(b.data) + first * b.cols * dtype_size(b.type);
    v.rows = count;
    return v;
}

void check_shifted_sums(const batch_view& b, std::size_t expected_cols, const double* shift, double* column_sums,
                        std::vector<double>& scratch, std::size_t chunk_rows, std::uint64_t first_row) {
    chunk_rows = std::max<std::size_t>(1, std::min(chunk_rows, b.rows));
    scratch.resize(checked_elements<double>({chunk_rows, expected_cols}, "batch chunk rows x columns"));
    if (b.rows == 0) {
        to_shifted_checked(b, expected_cols, shift, scratch.data(), expected_cols, column_sums, first_row);
        return;
    }
    for (std::size_t r0 = 0; r0 < b.rows; r0 += chunk_rows) {
        const std::size_t rc = std::min(chunk_rows, b.rows - r0);
        to_shifted_checked(batch_rows(b, r0, rc), expected_cols, shift, scratch.data(), expected_cols, column_sums,
                           first_row + r0);
    }
}

namespace {
template <class In>
bool sum_columns(const In* in, std::size_t rows, std::size_t d, double scale, const double* shift, std::size_t chunk_rows,
                 std::size_t lo, std::size_t hi, double* sums) {
    // As shifted(): a chunk's sums start from 0 in a local, row by row, then go into `sums`.
    constexpr std::size_t width = 512;  // columns at a time: the locals stay in L1
    double local[width];
    bool finite = true;
    for (std::size_t c0 = lo; c0 < hi; c0 += width) {
        const std::size_t cw = std::min(width, hi - c0);
        for (std::size_t r0 = 0; r0 < rows; r0 += chunk_rows) {
            const std::size_t rc = std::min(chunk_rows, rows - r0);
            std::fill(local, local + cw, 0.0);
            for (std::size_t r = r0; r < r0 + rc; ++r) {
                const In* row = in + r * d + c0;
                for (std::size_t c = 0; c < cw; ++c) local[c] += static_cast<double>(row[c]) * scale - shift[c0 + c];
            }
            for (std::size_t c = 0; c < cw; ++c) {
                finite = finite && std::isfinite(local[c]);
                sums[c0 + c] += local[c];
            }
        }
    }
    return finite;
}

template <class In>
void gather_rows(const In* in, std::size_t rows, std::size_t d, double scale, const double* shift, const std::size_t* cols,
                 std::size_t first_col, std::size_t count, std::size_t lo, std::size_t hi, double* out) {
    constexpr std::size_t ahead = 4, line = 64 / sizeof(In);
    for (std::size_t r = 0; r < rows; ++r) {
        const In* row = in + r * d;
        double* o = out + r * count;
        if (cols) {
            for (std::size_t j = lo; j < hi; ++j) o[j] = static_cast<double>(row[cols[j]]) * scale - shift[cols[j]];
        } else {
            // At high D each row's part of the block lies on its own page: ask for the row a
            // few ahead (as nystrom_sketch's conversion does).
            if (r + ahead < rows)
                for (std::size_t j = lo; j < hi; j += line) __builtin_prefetch(row + ahead * d + first_col + j);
            for (std::size_t j = lo; j < hi; ++j)
                o[j] = static_cast<double>(row[first_col + j]) * scale - shift[first_col + j];
        }
    }
}
}  // namespace

bool shifted_sums_columns(const batch_view& b, const double* shift, std::size_t chunk_rows, std::size_t lo,
                          std::size_t hi, double* column_sums) noexcept {
    chunk_rows = std::max<std::size_t>(1, std::min(chunk_rows, b.rows));
    if (lo > hi || hi > b.cols) return false;
    switch (b.type) {
        case dtype::u8: return sum_columns(static_cast<const std::uint8_t*>(b.data), b.rows, b.cols, b.scale, shift, chunk_rows, lo, hi, column_sums);
        case dtype::f32: return sum_columns(static_cast<const float*>(b.data), b.rows, b.cols, b.scale, shift, chunk_rows, lo, hi, column_sums);
        case dtype::f64: return sum_columns(static_cast<const double*>(b.data), b.rows, b.cols, b.scale, shift, chunk_rows, lo, hi, column_sums);
        default: return false;
    }
}

void gather_shifted(const batch_view& b, const double* shift, const std::size_t* cols, std::size_t first_col,
                    std::size_t count, double* out) {
    gather_shifted(b, shift, cols, first_col, count, 0, count, out);
}

void gather_shifted(const batch_view& b, const double* shift, const std::size_t* cols, std::size_t first_col,
                    std::size_t count, std::size_t lo, std::size_t hi, double* out) {
    if (lo > hi || hi > count) throw std::invalid_argument("gather_shifted: columns beyond the block");
    switch (b.type) {
        case dtype::u8: gather_rows(static_cast<const std::uint8_t*>(b.data), b.rows, b.cols, b.scale, shift, cols, first_col, count, lo, hi, out); break;
        case dtype::f32: gather_rows(static_cast<const float*>(b.data), b.rows, b.cols, b.scale, shift, cols, first_col, count, lo, hi, out); break;
        case dtype::f64: gather_rows(static_cast<const double*>(b.data), b.rows, b.cols, b.scale, shift, cols, first_col, count, lo, hi, out); break;
        default: throw input_error("batch has an unknown element type");
    }
}

namespace {

// Calls each(r, id) for every row's class id, after checking it lies in [0, classes); the
// refusal names the row counted from first_row. One check for every consumer of class ids.
template <class L, class F>
void for_each_id_checked(const L* ids, std::size_t rows, std::size_t classes, std::uint64_t first_row, F&& each) {
    for (std::size_t r = 0; r < rows; ++r) {
        const long long id = static_cast<long long>(ids[r]);
        if (id < 0 || static_cast<unsigned long long>(id) >= classes) {
            throw input_error("row " + std::to_string(first_row + r) + ": label " + std::to_string(id) +
                              " is out of range [0, " + std::to_string(classes) + ")");
        }
        each(r, static_cast<std::size_t>(id));
    }
}

template <class F>
void each_class_id(const target_view& t, std::size_t rows, std::size_t classes, std::uint64_t first_row, F&& each) {
    if (rows > 0 && t.data == nullptr) throw input_error("label data pointer is null");
    switch (t.labels) {
        case label_type::u8: for_each_id_checked(static_cast<const std::uint8_t*>(t.data), rows, classes, first_row, each); break;
        case label_type::i32: for_each_id_checked(static_cast<const std::int32_t*>(t.data), rows, classes, first_row, each); break;
        case label_type::i64: for_each_id_checked(static_cast<const std::int64_t*>(t.data), rows, classes, first_row, each); break;
        default: throw input_error("labels have an unknown integer type");
    }
}

void check_target_rows(const target_view& t, std::size_t rows, std::uint64_t first_row) {
    if (t.form == target_view::kind::none) throw input_error("this accumulator needs targets with every batch");
    if (t.rows != rows) {
        throw input_error("targets have " + std::to_string(t.rows) + " rows but the batch at row " +
                          std::to_string(first_row) + " has " + std::to_string(rows));
    }
}

}  // namespace

void targets_to_double_checked(const target_view& t, std::size_t rows, std::size_t classes, double* out,
                               std::uint64_t first_row) {
    check_target_rows(t, rows, first_row);
    if (t.form == target_view::kind::dense) {
        if (t.dense.cols != classes) {
            throw input_error("target rows have " + std::to_string(t.dense.cols) + " columns, expected " +
                              std::to_string(classes));
        }
        to_double_checked(t.dense, classes, out, first_row);
        return;
    }
    std::memset(out, 0, checked_bytes<double>(checked_mul(rows, classes, "labels x classes"), "one-hot targets"));
    each_class_id(t, rows, classes, first_row, [&](std::size_t r, std::size_t id) { out[r * classes + id] = 1.0; });
}

void class_indices_checked(const target_view& t, std::size_t rows, std::size_t classes, std::size_t* out,
                           std::uint64_t first_row) {
    check_target_rows(t, rows, first_row);
    if (t.form != target_view::kind::class_ids)
        throw input_error("this accumulator takes integer class ids as targets, got dense rows");
    each_class_id(t, rows, classes, first_row, [&](std::size_t r, std::size_t id) { out[r] = id; });
}

std::vector<double> scatter_shift(const batch_view& b, std::size_t expected_cols, std::size_t width,
                                  const double* running_mean, bool seen, std::uint64_t first_row) {
    std::vector<double> shift(width, 0.0);
    if (seen) {
        std::copy(running_mean, running_mean + width, shift.begin());
    } else if (b.rows > 0 && b.cols == expected_cols) {
        // The first batch has no running mean: its own column mean, in two passes (about the
        // first row, then that row plus the mean of the differences). A shift as far from the mean
        // as the first row leaves a rank-one correction b m mᵀ that cancels: with it the error grew
        // with the batch (Fashion-MNIST, 10,000 rows in one batch: 350x NumPy's two-pass error;
        // 40,000x after an outlier first row). The pass checks every value, naming its row.
        batch_view first = b;
        first.rows = 1;
        to_double_checked(first, expected_cols, shift.data(), first_row);
        if (b.rows > 1) {
            std::vector<double> sums(expected_cols, 0.0), scratch;
            check_shifted_sums(b, expected_cols, shift.data(), sums.data(), scratch,
                               std::max<std::size_t>(1, (std::size_t(1) << 16) / std::max<std::size_t>(expected_cols, 1)),
                               first_row);
            const double rows = static_cast<double>(b.rows);
            for (std::size_t j = 0; j < expected_cols; ++j) shift[j] += sums[j] / rows;
        }
    }
    return shift;
}

}  // namespace recalign
