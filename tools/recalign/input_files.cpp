#include "input_files.hpp"

#include <cstring>
#include <map>
#include <optional>
#include <stdexcept>

namespace recalign::cli {

namespace {

// The skipped files travel as length-prefixed bytes.
void put_u64(std::string& out, std::uint64_t v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); }
std::uint64_t get_u64(const std::string& in, std::size_t& at) {
    std::uint64_t v = 0;
    if (at + sizeof v > in.size()) throw std::logic_error("gather_skipped: short message");
    std::memcpy(&v, in.data() + at, sizeof v);
    at += sizeof v;
    return v;
}
std::string get_string(const std::string& in, std::size_t& at) {
    const std::uint64_t n = get_u64(in, at);
    if (n > in.size() - at) throw std::logic_error("gather_skipped: short message");
    std::string s = in.substr(at, static_cast<std::size_t>(n));
    at += static_cast<std::size_t>(n);
    return s;
}

}  // namespace

std::string files_difference(const std::vector<io::file_entry>& before, const std::vector<io::file_entry>& now) {
    std::map<std::string, const io::file_entry*> old_by_path, new_by_path;
    for (const io::file_entry& f : before) old_by_path.emplace(f.path, &f);
    for (const io::file_entry& f : now) new_by_path.emplace(f.path, &f);
    std::size_t added = 0, removed = 0, changed = 0;
    std::string first_added, first_removed, first_changed;
    for (const io::file_entry& f : now) {
        const auto it = old_by_path.find(f.path);
        if (it == old_by_path.end()) {
            if (!added++) first_added = f.path;
        } else if (!(*it->second == f) && !changed++) {
            first_changed = f.path + (it->second->size != f.size ? " (" + std::to_string(it->second->size) + " bytes, now " +
                                                                       std::to_string(f.size) + ")"
                                                                 : " (modification time)");
        }
    }
    for (const io::file_entry& f : before)
        if (!new_by_path.count(f.path) && !removed++) first_removed = f.path;
    std::string out;
    auto part = [&](std::size_t n, const char* what, const std::string& first) {
        if (!n) return;
        out += (out.empty() ? "" : "; ") + std::to_string(n) + " file(s) " + what + ", the first " + first;
    };
    part(added, "added", first_added);
    part(removed, "removed", first_removed);
    part(changed, "changed", first_changed);
    if (out.empty() && before != now) out = "the files are the same but in another order";
    return out;
}

std::string decoding_text(const io::data_source& src) {
    const io::data_format f = src.format();
    if (!io::is_image_format(f) && !io::is_cifar_format(f)) return {};
    const io::source_options& o = src.options();
    const io::image_geometry& g = o.geometry;
    std::string s = "channels=" + std::to_string(g.channels) + " resize=" + std::to_string(g.resize) + " crop=" +
                    std::to_string(g.crop_h) + "," + std::to_string(g.crop_w) + " layout=" + image_layout_name(g.layout);
    if (f == io::data_format::cifar100)
        s += std::string(" label-kind=") + (o.label_kind == io::cifar_label::fine ? "fine" : "coarse");
    return s;
}

void gather_skipped(const mpi_context& mpi, std::vector<io::skipped_file>& skipped) {
    if (!mpi.active()) return;
    std::string local;
    for (const io::skipped_file& f : skipped) {
        put_u64(local, f.index);
        put_u64(local, f.path.size());
        local += f.path;
        put_u64(local, f.reason.size());
        local += f.reason;
    }
    const std::optional<std::string> all =
        mpi.reduce_bytes(std::move(local), [](const std::string& lower, const std::string& upper) { return lower + upper; });
    if (!all) return;
    skipped.clear();
    for (std::size_t at = 0; at < all->size();) {
        io::skipped_file f;
        f.index = get_u64(*all, at);
        f.path = get_string(*all, at);
        f.reason = get_string(*all, at);
        skipped.push_back(std::move(f));
    }
}


}  // namespace recalign::cli
