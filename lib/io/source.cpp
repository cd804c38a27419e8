#include "recalign/io/source.hpp"

#include <sys/stat.h>

#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <algorithm>

#include "image_stream.hpp"
#include "posix_file.hpp"
#include "read_ahead.hpp"
#include "source_readers.hpp"
#include "recalign/core/checked.hpp"
#include "recalign/core/errors.hpp"
#include "recalign/core/hash.hpp"
#include "recalign/io/image_list.hpp"

namespace recalign::io {

namespace {

std::int64_t mtime_ns_of(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return 0;
    return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
}

// Several files as one: the combined fingerprint of data_source::images_fingerprint.
file_fingerprint combine(const std::string& name, const std::vector<file_entry>& files,
                         const std::vector<std::string>& class_names, const std::vector<std::uint64_t>& hashes) {
    file_fingerprint f;
    f.path = name;
    fnv1a h;
    h.add(static_cast<std::uint64_t>(files.size()));
    for (std::size_t i = 0; i < files.size(); ++i) {
        f.size += files[i].size;
        f.mtime_ns = std::max(f.mtime_ns, files[i].mtime_ns);
        h.add(std::string_view(files[i].path)).add(files[i].size).add(static_cast<std::uint64_t>(files[i].mtime_ns));
        if (i < hashes.size()) h.add(hashes[i]);
    }
    for (const std::string& c : class_names) h.add(std::string_view(c));
    f.content_hash = h.value();
    return f;
}

}  // namespace

// Files of one array format read one after the other; rows are numbered across them.
struct data_source::chain {
    std::vector<std::unique_ptr<reader>> parts;
    std::vector<std::string> paths;
    std::uint64_t rows = 0;
    std::size_t cur = 0;
    row_block more;
    std::vector<std::int64_t> more_labels;

    chain(const std::vector<std::string>& files, data_format f, const source_options& o) {
        for (const std::string& p : files) {
            parts.push_back(open_reader(p, f, o));
            paths.push_back(p);
            if (parts.back()->cols() != parts.front()->cols())
                throw file_error(p, "rows of " + std::to_string(parts.back()->cols()) + " values, but " + files.front() +
                                        " has rows of " + std::to_string(parts.front()->cols()));
            if (parts.back()->type_name() != parts.front()->type_name())
                throw file_error(p, "element type " + parts.back()->type_name() + ", but " + files.front() + " holds " +
                                        parts.front()->type_name());
            rows += parts.back()->rows();
        }
    }
    std::size_t cols() const { return parts.front()->cols(); }
    // Positions every part: the one holding `row` at it, the later ones at their start.
    void seek(std::uint64_t row, std::vector<std::unique_ptr<reader>> fresh) {
        parts = std::move(fresh);
        cur = 0;
        for (; cur < parts.size() && row >= parts[cur]->rows(); ++cur) row -= parts[cur]->rows();
        if (cur < parts.size()) parts[cur]->skip(row);
    }
    const std::string& current_path() const { return paths[std::min(cur, paths.size() - 1)]; }
    // Up to n rows (fewer only at the very end) into out, crossing files; labels carried by
    // the records (CIFAR) into labels.
    std::size_t read(std::size_t n, row_block& out, std::vector<std::int64_t>* labels) {
        std::size_t got = 0;
        out.rows = 0;
        if (labels) labels->clear();
        while (got < n && cur < parts.size()) {
            row_block& dst = got == 0 ? out : more;
            const std::size_t r = parts[cur]->read(n - got, dst);
            if (labels && parts[cur]->carried_labels()) {
                const std::vector<std::int64_t>& c = *parts[cur]->carried_labels();
                labels->insert(labels->end(), c.begin(), c.begin() + static_cast<std::ptrdiff_t>(r));
            }
            if (got != 0 && r) {
                out.bytes.insert(out.bytes.end(), more.bytes.begin(), more.bytes.end());
                out.rows += r;
            }
            got += r;
            if (r < n - got + r) ++cur;  // this file is done
        }
        out.rows = got;
        return got;
    }
    std::size_t read_labels(std::size_t n, std::vector<std::int64_t>& out) {
        std::size_t got = 0;
        out.clear();
        while (got < n && cur < parts.size()) {
            const std::size_t r = parts[cur]->read_labels(n - got, more_labels);
            out.insert(out.end(), more_labels.begin(), more_labels.begin() + static_cast<std::ptrdiff_t>(r));
            got += r;
            if (got < n) ++cur;
        }
        return got;
    }
};

data_source::data_source(const source_options& options) : options_(options) {
    if (options_.images.empty()) throw std::invalid_argument("no images file given");
    if (options_.batch == 0) throw std::invalid_argument("--batch must be at least 1");
    if (!(options_.scale == options_.scale) || options_.scale == 0 || std::abs(options_.scale) > 1e300)
        throw std::invalid_argument("--scale must be a finite non-zero number");
    options_.geometry.validate();
    format_ = options_.format;
    if (format_ == data_format::auto_detect)
        format_ = options_.raw_cols ? data_format::raw
                  : !options_.root.empty() ? data_format::list
                                           : detect_format(options_.images.front());
    for (const std::string& p : options_.images) {
        const data_format f = options_.format == data_format::auto_detect && !options_.raw_cols && options_.root.empty()
                                  ? detect_format(p) : format_;
        if (f != format_)
            throw file_error(p, std::string("is ") + format_name(f) + " but " + options_.images.front() + " is " +
                                    format_name(format_) + " (several --images are read as one stream of one format)");
    }
    if (!options_.classes_from.empty() && format_ != data_format::list)
        throw std::invalid_argument(std::string("--classes-from applies to list files (--format list), not to ") +
                                    format_name(format_));
    if (!options_.labels.empty()) {
        if (is_image_format(format_) || is_cifar_format(format_))
            throw std::invalid_argument(std::string("--format ") + format_name(format_) + " carries its labels: --labels does not apply");
        if (options_.labels.size() != options_.images.size())
            throw std::invalid_argument("--labels given " + std::to_string(options_.labels.size()) + " times for " +
                                        std::to_string(options_.images.size()) + " --images (one labels file per images file)");
        labels_format_ = detect_format(options_.labels.front());
        if (labels_format_ != data_format::idx && labels_format_ != data_format::npy)
            throw file_error(options_.labels.front(), "labels must be IDX or .npy");
    }
    open_images();
    if (cols_ == 0) throw file_error(options_.images.front(), "rows of zero values: nothing to analyse");
    if (options_.skip > file_rows_)
        throw std::invalid_argument("--skip " + std::to_string(options_.skip) + " is beyond the " +
                                    std::to_string(file_rows_) + " rows of " + options_.describe());
    total_ = file_rows_ - options_.skip;
    if (options_.limit) {
        if (options_.limit > total_)
            throw std::invalid_argument("--limit " + std::to_string(options_.limit) + " asks for more rows than the " +
                                        std::to_string(total_) + " of " + options_.describe() + " after --skip " +
                                        std::to_string(options_.skip));
        total_ = options_.limit;
    }
    if (labels_ && labels_->rows != file_rows_)
        throw file_error(options_.labels.front(), "has " + std::to_string(labels_->rows) + " labels but " +
                                                      options_.describe() + " has " + std::to_string(file_rows_) + " rows");
    if (labels_ && labels_->cols() != 1)
        throw file_error(options_.labels.front(), "labels must be one integer per row (this file has rows of " +
                                                      std::to_string(labels_->cols()) + " values)");
    open_at(0, false);
}

// Opens what the format needs and finds D before any data row is read: from the headers,
// the CIFAR record and the geometry, or the first (readable) image and the geometry.
void data_source::open_images() {
    if (!is_image_format(format_)) {
        images_ = std::make_shared<chain>(options_.images, format_, options_);
        if (!options_.labels.empty()) labels_ = std::make_shared<chain>(options_.labels, labels_format_, options_);
        // A pipe's writer stalls while nobody reads it: read it one batch ahead (read_ahead.hpp).
        if (std::any_of(images_->parts.begin(), images_->parts.end(), [](const auto& r) { return r->pipe(); }))
            ahead_ = std::make_unique<detail::batch_read_ahead>();
        cols_ = images_->cols();
        file_rows_ = images_->rows;
        if (is_cifar_format(format_)) {
            const std::string& first = options_.images.front();
            const auto slash = first.rfind('/');
            class_names_ = cifar_class_names(slash == std::string::npos ? "." : first.substr(0, slash),
                                             format_ == data_format::cifar10 ? cifar_kind::cifar10 : cifar_kind::cifar100,
                                             options_.label_kind);
        }
        return;
    }
    auto all = std::make_shared<image_list>();
    const std::vector<std::string> given =
        options_.classes_from.empty() ? std::vector<std::string>{} : read_class_names(options_.classes_from);
    for (const std::string& p : options_.images) {
        image_list one = format_ == data_format::folder ? scan_image_folder(p) : read_image_list(p, options_.root, given);
        if (format_ == data_format::folder && &p != &options_.images.front() && one.class_names != all->class_names)
            throw file_error(p, "its class folders differ from those of " + options_.images.front() +
                                    " (several folders are read as one stream of the same classes)");
        if (format_ == data_format::list && &p != &options_.images.front() &&
            one.class_names.empty() != all->class_names.empty())
            throw file_error(p, "its labels are " + std::string(one.class_names.empty() ? "class ids" : "class names") +
                                    ", those of " + options_.images.front() + " are not");
        if (format_ == data_format::list && given.empty() && !one.class_names.empty() && &p != &options_.images.front()) {
            // Renumber over the union of the names, in sorted order.
            std::vector<std::string> names = all->class_names;
            names.insert(names.end(), one.class_names.begin(), one.class_names.end());
            std::sort(names.begin(), names.end());
            names.erase(std::unique(names.begin(), names.end()), names.end());
            auto id = [&](const std::string& n) {
                return static_cast<std::int64_t>(std::lower_bound(names.begin(), names.end(), n) - names.begin());
            };
            for (image_sample& s : all->samples) s.label = id(all->class_names[static_cast<std::size_t>(s.label)]);
            for (image_sample& s : one.samples) s.label = id(one.class_names[static_cast<std::size_t>(s.label)]);
            all->class_names = names;
        } else if (&p == &options_.images.front()) {
            all->class_names = one.class_names;
        }
        all->samples.insert(all->samples.end(), std::make_move_iterator(one.samples.begin()),
                            std::make_move_iterator(one.samples.end()));
    }
    class_names_ = all->class_names;
    file_rows_ = all->samples.size();
    const image_geometry& g = options_.geometry;
    std::pair<std::size_t, std::size_t> hw{g.crop_h, g.crop_w};
    std::uint64_t first_bytes = 0;  // per decoding thread, at the first image's size (batch_bytes)
    {
        // The first image whose header reads sets the size without a crop, and (crop or not)
        // the decoders' scratch that batch_bytes counts; unreadable ones are skipped again, in
        // their turn, when the stream reaches them. The header only: an image decoded here and
        // freed would raise glibc's mmap threshold to its size, and the blocks below that size
        // allocated later would stay in the heap (+53 MB of peak with 3000x2000 JPEGs).
        std::vector<std::uint8_t> bytes;
        for (std::size_t i = 0;; ++i) {
            if (i == all->samples.size())
                throw file_error(options_.describe(), "no image decodes (every file was unreadable)");
            const image_sample& s = all->samples[i];
            try {
                std::uint64_t size = 0;
                int fd = detail::open_read(s.path, size);
                try {
                    if (size > (std::uint64_t(1) << 31)) throw file_error(s.path, "larger than 2 GiB: not an image file");
                    bytes.resize(static_cast<std::size_t>(size));
                    detail::pread_exact(fd, bytes.data(), bytes.size(), 0, s.path);
                } catch (...) {
                    detail::close_fd(fd);
                    throw;
                }
                detail::close_fd(fd);
                const auto [h, w] = image_size(bytes.data(), bytes.size(), s.path);
                if (!g.crop_h) hw = output_size(h, w, g);
                // Per decoding thread: the file, the decoded image, transform_image's scratch (about
                // the decoded image when it shrinks it; a few KB when it grows one) and the codec's
                // own (libjpeg's coefficients of a progressive JPEG, 2 bytes a value; libpng's raw
                // rows of an interlaced PNG): about 4 decoded images.
                first_bytes = bytes.size() + 4 * static_cast<std::uint64_t>(h) * w * static_cast<std::uint64_t>(g.channels);
                break;
            } catch (const std::exception& e) {
                if (!options_.skip_unreadable)
                    throw input_error("sample " + std::to_string(i) + ": " + e.what() + detail::skip_unreadable_hint);
            }
        }
    }
    list_ = all;
    std::size_t threads = options_.threads ? options_.threads : std::max(1u, std::thread::hardware_concurrency());
    decoder_ = std::make_unique<detail::image_stream>(list_, g, hw.first, hw.second, threads, options_.skip_unreadable);
    cols_ = decoder_->cols();
    decoding_bytes_ = checked_mul(threads, first_bytes, "decoding bytes");
}

data_source::~data_source() = default;
data_source::data_source(data_source&&) noexcept = default;
data_source& data_source::operator=(data_source&&) noexcept = default;

std::uint64_t data_source::batch_bytes() const {
    const std::uint64_t rows = std::min<std::uint64_t>(options_.batch, total_);
    const std::uint64_t value = images_ ? dtype_size(images_->parts.front()->delivery()) : 1;
    const std::uint64_t batch = checked_mul(checked_mul(rows, cols_, "batch values"), value, "batch bytes");
    return checked_add(checked_mul(batch, ahead_ || decoder_ ? 2 : 1, "batch bytes"), decoding_bytes_, "batch bytes");
}

std::string data_source::type_name() const {
    return images_ ? images_->parts.front()->type_name() : std::string("u8");
}

void data_source::open_at(std::uint64_t position, bool reopen) {
    const std::uint64_t first = options_.skip + position;
    if (first > file_rows_)
        throw std::invalid_argument((position == 0 ? "--skip " + std::to_string(options_.skip) + " is beyond the "
                                                   : "row " + std::to_string(first) + " is beyond the ") +
                                    std::to_string(file_rows_) + " rows of " + options_.describe());
    // The readers the constructor opened are at their start: a named pipe opened twice would
    // wait for a second writer (the first would see its reader gone).
    if (images_) {
        std::vector<std::unique_ptr<reader>> fresh;
        if (reopen)
            for (const std::string& p : options_.images) fresh.push_back(open_reader(p, format_, options_));
        else fresh = std::move(images_->parts);
        images_->seek(first, std::move(fresh));
    }
    if (labels_) {
        std::vector<std::unique_ptr<reader>> fresh;
        if (reopen)
            for (const std::string& p : options_.labels) fresh.push_back(open_reader(p, labels_format_, options_));
        else fresh = std::move(labels_->parts);
        labels_->seek(first, std::move(fresh));
    }
    position_ = position;
}

void data_source::seek(std::uint64_t position) {
    if (ahead_) ahead_->discard();
    if (position > total_)
        throw std::invalid_argument("cannot continue at row " + std::to_string(position) + " of a range of " +
                                    std::to_string(total_) + " rows");
    open_at(position, true);
}

bool data_source::next(source_batch& out, std::size_t max_rows) {
    const std::size_t per = max_rows ? max_rows : options_.batch;
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(total_ - position_, per));
    out.rows = 0;
    out.cols = cols_;
    out.first_row = options_.skip + position_;
    out.scale = options_.scale;
    out.skipped.clear();
    if (want == 0) return false;
    if (decoder_) {
        const std::uint64_t after = position_ + want;
        const std::size_t ahead = static_cast<std::size_t>(std::min<std::uint64_t>(total_ - after, per));
        decoder_->read(options_.skip + position_, want, ahead, out);
        position_ += want;
        return true;
    }
    // Array formats: a pipe's batch may already have been read (ahead_), else it is read here.
    if (ahead_ && ahead_->pending()) {
        if (ahead_->rows() != want)
            throw std::logic_error("data_source::next: " + std::to_string(ahead_->rows()) + " rows were read ahead, " +
                                   std::to_string(want) + " asked for");
        ahead_->take(out);
    } else {
        read_arrays(*images_, labels_.get(), is_cifar_format(format_), want, out);
    }
    position_ += out.rows;
    if (ahead_ && max_rows == 0 && position_ < total_) {
        const std::size_t rows = static_cast<std::size_t>(std::min<std::uint64_t>(total_ - position_, per));
        try {
            ahead_->start(rows, [images = images_, labels = labels_, carried = is_cifar_format(format_), rows,
                                 first = options_.skip + position_, cols = cols_, scale = options_.scale](source_batch& b) {
                b.first_row = first;
                b.cols = cols;
                b.scale = scale;
                b.skipped.clear();
                read_arrays(*images, labels.get(), carried, rows, b);
            });
        } catch (const std::exception&) {  // no thread (or memory) to be had: the batch is
            ahead_.reset();                   // delivered, the next ones are read here
        }
    }
    return true;
}

// `want` rows of an array source (and their labels) into out.rows, out.block and out.labels.
// The readers resize out.block.bytes: no allocation once it has held a full batch.
void data_source::read_arrays(chain& images, chain* labels, bool carried, std::size_t want, source_batch& out) {
    out.rows = 0;
    const std::size_t got = images.read(want, out.block, carried ? &out.labels : nullptr);
    if (got != want) throw file_error(images.current_path(), "fewer rows than the header announces");
    if (labels) {
        if (labels->read_labels(got, out.labels) != got)
            throw file_error(labels->current_path(), "fewer labels than the header announces");
    } else if (!carried) {
        out.labels.clear();
    }
    out.rows = got;
}

std::size_t data_source::scan_classes() const {
    if (!has_labels()) throw std::logic_error("scan_classes: no labels");
    if (is_cifar_format(format_))
        return cifar_classes(format_ == data_format::cifar10 ? cifar_kind::cifar10 : cifar_kind::cifar100, options_.label_kind);
    if (list_) {
        if (!class_names_.empty()) return class_names_.size();
        std::int64_t top = -1;
        for (const image_sample& s : list_->samples) top = std::max(top, s.label);
        if (top >= (std::int64_t(1) << 20))
            throw input_error(options_.describe() + ": largest label " + std::to_string(top) +
                              " implies more than 2^20 classes; pass --classes if this is intended");
        return static_cast<std::size_t>(top + 1);
    }
    std::int64_t top = -1;
    std::vector<std::int64_t> y;
    for (const std::string& path : options_.labels) {
        auto r = open_reader(path, labels_format_, options_);
        std::uint64_t row = 0, left = r->rows();
        while (left > 0) {
            const std::size_t got = r->read_labels(static_cast<std::size_t>(std::min<std::uint64_t>(left, 1 << 16)), y);
            if (got == 0) break;
            for (std::size_t i = 0; i < got; ++i) {
                if (y[i] < 0)
                    throw input_error(path + ": row " + std::to_string(row + i) + ": negative label " + std::to_string(y[i]));
                if (y[i] > top) top = y[i];
            }
            row += got;
            left -= got;
        }
    }
    if (top >= (std::int64_t(1) << 20))
        throw input_error(options_.labels.front() + ": largest label " + std::to_string(top) +
                          " implies more than 2^20 classes; pass --classes if this is intended");
    return static_cast<std::size_t>(top + 1);
}

std::vector<file_entry> data_source::files() const {
    std::vector<file_entry> out;
    if (list_) {
        if (format_ == data_format::list)
            for (const std::string& p : options_.images) {
                std::uint64_t size = 0;
                int fd = detail::open_read(p, size);
                detail::close_fd(fd);
                out.push_back({p, size, mtime_ns_of(p)});
            }
        for (const image_sample& s : list_->samples) out.push_back({s.path, s.size, s.mtime_ns});
        return out;
    }
    if (options_.images.size() == 1) return out;
    for (const std::string& p : options_.images) {
        const file_fingerprint f = fingerprint_file(p);
        out.push_back({f.path, f.size, f.mtime_ns});
    }
    return out;
}

file_fingerprint data_source::images_fingerprint() const {
    if (!list_ && options_.images.size() == 1) return fingerprint_file(options_.images.front());
    std::vector<std::uint64_t> hashes;
    if (!list_)
        for (const std::string& p : options_.images) hashes.push_back(fingerprint_file(p).content_hash);
    return combine(options_.describe(), files(), class_names_, hashes);
}

file_fingerprint data_source::labels_fingerprint() const {
    if (options_.labels.empty()) return {};
    if (options_.labels.size() == 1) return fingerprint_file(options_.labels.front());
    std::vector<file_entry> files;
    std::vector<std::uint64_t> hashes;
    std::string name;
    for (const std::string& p : options_.labels) {
        const file_fingerprint f = fingerprint_file(p);
        files.push_back({f.path, f.size, f.mtime_ns});
        hashes.push_back(f.content_hash);
        name += (name.empty() ? "" : " + ") + p;
    }
    return combine(name, files, {}, hashes);
}

}  // namespace recalign::io
