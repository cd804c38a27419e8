// CIFAR-10 and CIFAR-100 binary batches (data_batch_*.bin, test_batch.bin, train.bin,
// test.bin): fixed-size records, <label> 3072 pixels (CIFAR-10, 3073 bytes) or <coarse label>
// <fine label> 3072 pixels (CIFAR-100, 3074 bytes); the pixels are a 32x32 image stored as
// three planes R, G, B (CHW). Only bytes move here: the records are turned into HWC images
// (io/image.hpp) so that every geometry option applies to them as to decoded files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "recalign/io/image.hpp"

namespace recalign::io {

enum class cifar_kind : std::uint8_t { cifar10 = 10, cifar100 = 100 };
enum class cifar_label : std::uint8_t { fine = 0, coarse = 1 };

constexpr std::size_t cifar_side = 32;
constexpr std::size_t cifar_pixels = 3 * cifar_side * cifar_side;  // 3072
std::size_t cifar_record_size(cifar_kind k);                       // 3073 or 3074
// Classes of the labels read: 10 (CIFAR-10), 100 fine or 20 coarse (CIFAR-100).
std::size_t cifar_classes(cifar_kind k, cifar_label l);
// Whether `bytes` are a whole (nonzero) number of records of kind k.
bool whole_cifar_records(std::uint64_t bytes, cifar_kind k);
// The kind a file of `bytes` bytes must be: a whole number of records of one kind only.
// Throws file_error naming `name` when it is neither or both (then --format must say).
cifar_kind detect_cifar(std::uint64_t bytes, const std::string& name);

// One record -> its label (range-checked: file_error naming `name`, the record's byte offset)
// and its pixels as an HWC image with `channels` 3 (RGB) or 1 (PIL's convert("L") of it).
std::int64_t decode_cifar_record(const std::uint8_t* record, cifar_kind k, cifar_label l, int channels, image& out,
                                 const std::string& name, std::uint64_t offset);

// The class names shipped beside the binary files (batches.meta.txt for CIFAR-10,
// fine_label_names.txt / coarse_label_names.txt for CIFAR-100) when `dir` holds them and
// they name exactly the classes expected; empty otherwise.
std::vector<std::string> cifar_class_names(const std::string& dir, cifar_kind k, cifar_label l);

}  // namespace recalign::io
