#include "recalign/io/image_list.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include "recalign/core/errors.hpp"
#include "recalign/io/image.hpp"

namespace recalign::io {

namespace {

std::int64_t mtime_of(const struct stat& st) {
    return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
}

// Entry names of a directory (without . and ..); file_error when it cannot be read.
std::vector<std::string> list_dir(const std::string& dir) {
    DIR* d = ::opendir(dir.c_str());
    if (!d) throw file_error(dir, std::string("cannot read directory: ") + std::strerror(errno));
    std::vector<std::string> names;
    errno = 0;
    while (const dirent* e = ::readdir(d)) {
        if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names.emplace_back(e->d_name);
        errno = 0;
    }
    const int err = errno;
    ::closedir(d);
    if (err) throw file_error(dir, std::string("cannot read directory: ") + std::strerror(err));
    return names;
}

bool stat_dir(const std::string& path, struct stat& st) { return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode); }

struct walked_dir {
    std::string path;                // full path (sorted as os.walk's roots are)
    std::vector<std::string> files;  // image files, sorted
};

// os.walk(dir, followlinks=True), refusing a directory that is its own ancestor.
void walk(const std::string& dir, std::vector<std::pair<dev_t, ino_t>>& ancestors, std::vector<walked_dir>& out) {
    walked_dir here{dir, {}};
    std::vector<std::string> subdirs;
    for (std::string& name : list_dir(dir)) {
        const std::string full = dir + "/" + name;
        struct stat st {};
        if (stat_dir(full, st)) {
            const std::pair<dev_t, ino_t> id{st.st_dev, st.st_ino};
            if (std::find(ancestors.begin(), ancestors.end(), id) != ancestors.end())
                throw file_error(full, "symbolic link loop: this directory contains itself");
            subdirs.push_back(full);
        } else if (is_image_extension(name)) {
            here.files.push_back(std::move(name));
        }
    }
    std::sort(here.files.begin(), here.files.end());
    out.push_back(std::move(here));
    for (const std::string& s : subdirs) {
        struct stat st {};
        stat_dir(s, st);
        ancestors.emplace_back(st.st_dev, st.st_ino);
        walk(s, ancestors, out);
        ancestors.pop_back();
    }
}

}  // namespace

namespace {
// ImageFolder's classes: the sorted names of root's sub-directories (links followed).
std::vector<std::string> folder_classes(const std::string& root) {
    std::vector<std::string> names;
    for (std::string& name : list_dir(root)) {
        struct stat st {};
        if (stat_dir(root + "/" + name, st)) names.push_back(std::move(name));
    }
    if (names.empty())
        throw file_error(root, "no class folder: an image folder holds one sub-directory per class (ROOT/<class>/<image>)");
    std::sort(names.begin(), names.end());
    return names;
}
}  // namespace

image_list scan_image_folder(const std::string& root) {
    struct stat rs {};
    if (!stat_dir(root, rs)) throw file_error(root, "not a directory");
    image_list list;
    list.class_names = folder_classes(root);
    std::vector<std::string> empty;
    for (std::size_t c = 0; c < list.class_names.size(); ++c) {
        const std::string dir = root + "/" + list.class_names[c];
        struct stat st {};
        stat_dir(dir, st);
        std::vector<std::pair<dev_t, ino_t>> ancestors{{rs.st_dev, rs.st_ino}, {st.st_dev, st.st_ino}};
        std::vector<walked_dir> dirs;
        walk(dir, ancestors, dirs);
        std::sort(dirs.begin(), dirs.end(), [](const walked_dir& a, const walked_dir& b) { return a.path < b.path; });
        const std::size_t before = list.samples.size();
        for (const walked_dir& d : dirs)
            for (const std::string& f : d.files) list.samples.push_back({d.path + "/" + f, static_cast<std::int64_t>(c)});
        if (list.samples.size() == before) empty.push_back(list.class_names[c]);
    }
    if (!empty.empty()) {
        std::string names;
        for (const std::string& e : empty) names += (names.empty() ? "" : ", ") + e;
        throw file_error(root, "class folder(s) without an image file (.jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp): " + names);
    }
    stat_samples(list);
    return list;
}

namespace {
// The one reader of the text files here (image lists, class names): `each(line, number, at)`
// for every line, without its "\n" or "\r\n", numbered from 1, at its byte offset.
template <class F>
void for_each_line(std::istream& is, F each) {
    std::string line;
    std::uint64_t number = 0, offset = 0;
    while (std::getline(is, line)) {
        const std::uint64_t at = offset;
        offset += line.size() + 1;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        each(line, ++number, at);
    }
}

// A refusal of line `number` of `file`, at its byte offset.
[[noreturn]] void refuse_line(const std::string& file, std::uint64_t number, std::uint64_t at, const std::string& why) {
    throw file_error(file, at, "line " + std::to_string(number) + ": " + why);
}
}  // namespace

image_list parse_image_list(const std::string& text, const std::string& name, const std::string& root,
                            const std::vector<std::string>& classes) {
    image_list list;
    std::map<std::string, std::int64_t> given;  // --classes-from: name -> id
    for (std::size_t i = 0; i < classes.size(); ++i) given.emplace(classes[i], static_cast<std::int64_t>(i));
    std::vector<std::string> label_names;  // per sample, when the labels are names
    bool names = false, numbers = false;
    std::istringstream is(text);
    for_each_line(is, [&](const std::string& line, std::uint64_t line_no, std::uint64_t at) {
        auto refuse = [&](const std::string& why) { refuse_line(name, line_no, at, why); };
        if (line.find('\0') != std::string::npos) refuse("NUL byte (not a text list)");
        std::vector<std::string> fields;
        if (line.find('\t') != std::string::npos) {
            std::istringstream ls(line);
            std::string f;
            while (std::getline(ls, f, '\t'))
                if (!f.empty()) fields.push_back(f);
        } else {
            std::istringstream ls(line);
            std::string f;
            while (ls >> f) fields.push_back(f);
        }
        if (fields.empty() || fields[0][0] == '#') return;
        if (fields.size() < 2) refuse("expected 'relative/path label', got '" + line.substr(0, 200) + "'");
        const std::string& label = fields[1];
        const bool digits = label.find_first_not_of("0123456789") == std::string::npos;
        image_sample s;
        s.path = root.empty() ? fields[0] : root + "/" + fields[0];
        if (digits) {
            if (label.size() > 9) refuse("label " + label + " is too large");
            numbers = true;
            s.label = std::stoll(label);
            if (!classes.empty() && s.label >= static_cast<std::int64_t>(classes.size()))
                refuse("label " + label + " is not below the " + std::to_string(classes.size()) + " classes of --classes-from");
        } else {
            names = true;
            if (!classes.empty()) {
                const auto it = given.find(label);
                if (it == given.end()) refuse("class '" + label.substr(0, 200) + "' is not among the names of --classes-from");
                s.label = it->second;
            }
            label_names.push_back(label);
        }
        if (numbers && names) refuse("labels mix class ids and class names");
        list.samples.push_back(std::move(s));
    });
    if (list.samples.empty()) throw file_error(name, "the list names no image");
    if (!classes.empty()) {
        list.class_names = classes;
    } else if (names) {
        std::map<std::string, std::int64_t> ids;
        for (const std::string& n : label_names) ids.emplace(n, 0);
        std::int64_t next = 0;
        for (auto& kv : ids) {
            kv.second = next++;
            list.class_names.push_back(kv.first);
        }
        for (std::size_t i = 0; i < list.samples.size(); ++i) list.samples[i].label = ids[label_names[i]];
    }
    return list;
}

image_list read_image_list(const std::string& list_file, const std::string& root,
                           const std::vector<std::string>& classes) {
    struct stat ls {};
    if (stat_dir(list_file, ls))
        throw file_error(list_file, "is a directory, not a list file (an image folder is --format folder)");
    std::ifstream is(list_file, std::ios::binary);
    if (!is) throw file_error(list_file, std::string("cannot open: ") + std::strerror(errno));
    std::ostringstream text;
    text << is.rdbuf();
    std::string dir = root;
    if (dir.empty()) {
        const auto slash = list_file.rfind('/');
        dir = slash == std::string::npos ? "." : list_file.substr(0, slash);
    }
    struct stat st {};
    if (!stat_dir(dir, st)) throw file_error(dir, "--root is not a directory");
    image_list list = parse_image_list(text.str(), list_file, dir, classes);
    stat_samples(list);
    return list;
}

std::vector<std::string> read_class_names(const std::string& path) {
    struct stat st {};
    if (stat_dir(path, st)) return folder_classes(path);
    std::ifstream is(path, std::ios::binary);
    if (!is) throw file_error(path, std::string("--classes-from: cannot open: ") + std::strerror(errno));
    std::vector<std::string> names;
    std::map<std::string, std::uint64_t> seen;
    for_each_line(is, [&](const std::string& line, std::uint64_t line_no, std::uint64_t at) {
        const auto first = line.find_first_not_of(" \t"), last = line.find_last_not_of(" \t");
        if (first == std::string::npos || line[first] == '#') return;
        const std::string n = line.substr(first, last - first + 1);
        auto refuse = [&](const std::string& why) { refuse_line(path, line_no, at, why); };
        if (n.find_first_of(" \t") != std::string::npos || n.find('\0') != std::string::npos)
            refuse("a class name is one word per line, got '" + n.substr(0, 200) + "'");
        if (!seen.emplace(n, line_no).second)
            refuse("class '" + n + "' is named twice (first on line " + std::to_string(seen[n]) + ")");
        names.push_back(n);
    });
    if (names.empty()) throw file_error(path, "--classes-from names no class");
    return names;
}

void stat_samples(image_list& list) {
    for (image_sample& s : list.samples) {
        struct stat st {};
        if (::stat(s.path.c_str(), &st) == 0) {
            s.size = static_cast<std::uint64_t>(st.st_size);
            s.mtime_ns = mtime_of(st);
        }
    }
}

}  // namespace recalign::io
