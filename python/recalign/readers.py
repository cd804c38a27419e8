"""Readers of image folders, list files and CIFAR binary batches: iterables of
(images uint8 (n, D), labels int64 (n,)) batches, decoded in C++ threads one batch ahead,
with the CLI's order, pixels and geometry (README "Image folders, lists and CIFAR").
`recalign.hooks.track` consumes them as it consumes a torch DataLoader:

    data = recalign.ImageFolder("train", resize=64, crop=64, batch=512)
    acc = recalign.MomentAccumulator(data.dim, classes=len(data.classes))
    recalign.hooks.track(data, acc, checkpoint="run.ckpt")
"""
import os

from ._recalign import DataSource

__all__ = ["ImageFolder", "ImageList", "Cifar", "DataSource"]


def _paths(p):
    if isinstance(p, (str, bytes, os.PathLike)):
        return [os.fspath(p)]
    return [os.fspath(x) for x in p]


def _crop(crop):
    if crop is None:
        return (0, 0)
    if isinstance(crop, int):
        return (crop, crop)
    h, w = crop
    return (int(h), int(w))


def ImageFolder(root, channels=3, resize=0, crop=None, layout="hwc", batch=256, threads=0, skip_unreadable=False):
    """torchvision's ImageFolder layout ROOT/<class>/.../<image> (several roots: one stream
    of the same classes), in its sample order and class ids (.samples, .classes). JPEG and
    PNG; channels 1 or 3 as PIL's convert("L"/"RGB"); resize = torchvision Resize(S);
    crop = CenterCrop (an int or (h, w)); layout "hwc" or "chw"; threads 0 = the cores."""
    return DataSource(_paths(root), format="folder", channels=channels, resize=resize, crop=_crop(crop),
                      layout=layout, batch=batch, threads=threads, skip_unreadable=skip_unreadable)


def ImageList(list_file, root=None, channels=3, resize=0, crop=None, layout="hwc", batch=256, threads=0,
              skip_unreadable=False, classes_from=None):
    """A list file of "relative/path label" lines (label a class id or a class name; tab-
    separated lines with extra columns, as TinyImageNet's val_annotations.txt, work too),
    paths relative to root (default: the list file's directory). Class names are numbered in
    sorted order unless classes_from names an image folder (its ImageFolder class ids: pass
    the training folder) or a file of one class name per line (ids in its order)."""
    return DataSource(_paths(list_file), format="list", root=os.fspath(root) if root else "", channels=channels,
                      resize=resize, crop=_crop(crop), layout=layout, batch=batch, threads=threads,
                      skip_unreadable=skip_unreadable, classes_from=os.fspath(classes_from) if classes_from else "")


def Cifar(paths, label_kind="fine", kind="auto", channels=3, resize=0, crop=None, layout="hwc", batch=1000):
    """CIFAR-10 / CIFAR-100 binary batches (data_batch_*.bin, test_batch.bin, train.bin,
    test.bin) as one stream; kind "cifar10", "cifar100" or "auto" (by record size);
    label_kind "fine" or "coarse" (CIFAR-100). Rows are HWC unless layout="chw" (the
    files' own order)."""
    return DataSource(_paths(paths), format=kind, label_kind=label_kind, channels=channels, resize=resize,
                      crop=_crop(crop), layout=layout, batch=batch)
