#include "recalign/core/batch.hpp"

#include <cmath>
#include <cstring>
#include <string>

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

std::size_t dtype_size(dtype t) {
    switch (t) {
        case dtype::u8: return 1;
        case dtype::f32: return 4;
        case dtype::f64: return 8;
    }
    return 0;
}

namespace {

void check_shape(const batch_view& b, std::size_t expected_cols) {
    if (b.cols != expected_cols) {
        throw input_error("batch has " + std::to_string(b.cols) + " columns, expected " +
                          std::to_string(expected_cols) + " (the accumulator's dimension)");
    }
    if (b.rows > 0 && b.data == nullptr) throw input_error("batch data pointer is null");
}

[[noreturn]] void not_finite(std::uint64_t row, std::size_t col, double v) {
    throw input_error("row " + std::to_string(row) + ", column " + std::to_string(col) + ": value " +
                      std::to_string(v) + " is not finite (NaN or Inf)");
}

template <class In, class Out>
void convert(const In* in, std::size_t n, std::size_t cols, Out* out, std::uint64_t first_row) {
    for (std::size_t i = 0; i < n; ++i) {
        const double v = static_cast<double>(in[i]);
        if constexpr (!std::is_integral_v<In>) {
            if (!std::isfinite(v)) not_finite(first_row + i / cols, i % cols, v);
        }
        out[i] = static_cast<Out>(in[i]);
    }
}

template <class Out>
void to_checked(const batch_view& b, std::size_t expected_cols, Out* out, std::uint64_t first_row) {
    check_shape(b, expected_cols);
    const std::size_t n = b.rows * b.cols;
    switch (b.type) {
        case dtype::u8: convert(static_cast<const std::uint8_t*>(b.data), n, b.cols, out, first_row); break;
        case dtype::f32: convert(static_cast<const float*>(b.data), n, b.cols, out, first_row); break;
        case dtype::f64: convert(static_cast<const double*>(b.data), n, b.cols, out, first_row); break;
        default: throw input_error("batch has an unknown element type");
    }
}

}  // namespace

void to_double_checked(const batch_view& b, std::size_t expected_cols, double* out, std::uint64_t first_row) {
    to_checked(b, expected_cols, out, first_row);
}

void to_float_checked(const batch_view& b, std::size_t expected_cols, float* out, std::uint64_t first_row) {
    to_checked(b, expected_cols, out, first_row);
}

namespace {

template <class L>
void one_hot(const L* ids, std::size_t rows, std::size_t classes, double* out, std::uint64_t first_row) {
    std::memset(out, 0, rows * classes * sizeof(double));
    for (std::size_t r = 0; r < rows; ++r) {
        const long long id = static_cast<long long>(ids[r]);
        if (id < 0 || static_cast<unsigned long long>(id) >= classes) {
            throw input_error("row " + std::to_string(first_row + r) + ": label " + std::to_string(id) +
                              " is out of range [0, " + std::to_string(classes) + ")");
        }
        out[r * classes + static_cast<std::size_t>(id)] = 1.0;
    }
}

}  // namespace

void targets_to_double_checked(const target_view& t, std::size_t rows, std::size_t classes, double* out,
                               std::uint64_t first_row) {
    if (t.form == target_view::kind::none) throw input_error("this accumulator needs targets with every batch");
    if (t.rows != rows) {
        throw input_error("targets have " + std::to_string(t.rows) + " rows but the batch has " +
                          std::to_string(rows));
    }
    if (t.form == target_view::kind::dense) {
        if (t.dense.cols != classes) {
            throw input_error("target rows have " + std::to_string(t.dense.cols) + " columns, expected " +
                              std::to_string(classes));
        }
        to_double_checked(t.dense, classes, out, first_row);
        return;
    }
    if (rows > 0 && t.data == nullptr) throw input_error("label data pointer is null");
    switch (t.labels) {
        case label_type::u8: one_hot(static_cast<const std::uint8_t*>(t.data), rows, classes, out, first_row); break;
        case label_type::i32: one_hot(static_cast<const std::int32_t*>(t.data), rows, classes, out, first_row); break;
        case label_type::i64: one_hot(static_cast<const std::int64_t*>(t.data), rows, classes, out, first_row); break;
        default: throw input_error("labels have an unknown integer type");
    }
}

}  // namespace recalign
