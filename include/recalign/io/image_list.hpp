// Which image files a run reads, in which order, with which class ids: torchvision's
// ImageFolder layout (ROOT/<class>/.../<file>) or a list file of "relative/path label" lines.
// Only names, sizes and modification times are read here, never pixels.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace recalign::io {

struct image_sample {
    std::string path;           // as opened (ROOT/<class>/... or --root/<relative path>)
    std::int64_t label = 0;
    std::uint64_t size = 0;     // from stat (0 when it cannot be stat'ed: reading it fails later)
    std::int64_t mtime_ns = 0;
};

struct image_list {
    std::vector<std::string> class_names;  // index = class id (empty: integer labels)
    std::vector<image_sample> samples;
};

// torchvision.datasets.ImageFolder(root).samples, in its order: classes are the sorted names
// of the sub-directories of root (symbolic links followed, hidden ones included); each class's
// directories are visited in the sorted order of their paths (sorted(os.walk(..,
// followlinks=True))) and each directory's files in sorted name order; a file is taken when
// its name ends in one of torchvision's IMG_EXTENSIONS (is_image_extension). Refuses, in one
// line each (file_error naming the directory): no class folder, a class with no image file,
// a directory that cannot be read, and a symbolic link loop (which os.walk would follow
// until the path is too long).
image_list scan_image_folder(const std::string& root);

// A list file: one sample per line, "relative/path label", fields separated by tabs when the
// line holds a tab (then paths may contain spaces) and by spaces otherwise; further fields
// are ignored (TinyImageNet's val_annotations.txt: "val_0.JPEG<TAB>n03444034<TAB>0 32 44 62").
// Empty lines and lines starting with '#' are skipped. Labels are all integers >= 0 (class id)
// or all class names; names are numbered in their sorted order (as ImageFolder numbers its
// folders), so a list naming every class of a training folder gets the folder's class ids.
// Paths are taken relative to `root` (the list file's directory when empty). file_error
// naming the list file and the line for anything else.
//
// `classes` (non-empty: --classes-from): the class names and their ids (index) come from it
// instead: a name label must be one of them, an integer label below their count, and the
// list's class_names are `classes` (so a validation list that lacks some classes still gets
// the training folder's ids).
image_list read_image_list(const std::string& list_file, const std::string& root,
                           const std::vector<std::string>& classes = {});
// The parser behind read_image_list (no file access, no stat: size and mtime stay 0).
image_list parse_image_list(const std::string& text, const std::string& name, const std::string& root,
                            const std::vector<std::string>& classes = {});
// Class names for --classes-from: a directory gives its sub-directories' names sorted (the
// class ids of torchvision's ImageFolder over it); a file gives one name per line in the
// file's order (empty lines and '#' lines skipped; TinyImageNet's wnids.txt is such a file,
// but NOT in ImageFolder's order: pass the train folder to match a run over it). file_error
// naming the path (and line) for a missing path, no name, a duplicate or a name with blanks.
std::vector<std::string> read_class_names(const std::string& path);

// Sizes and modification times of the samples (stat); a file that cannot be stat'ed keeps 0.
void stat_samples(image_list& list);

}  // namespace recalign::io
