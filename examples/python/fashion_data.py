"""Fashion-MNIST as a torch Dataset, read from Debian's dataset-fashion-mnist IDX files
(/usr/share/datasets/fashion-mnist, or $RECALIGN_FASHION_MNIST)."""
import gzip
import os

import numpy as np
import torch
from torch.utils.data import Dataset

ROOT = os.environ.get("RECALIGN_FASHION_MNIST", "/usr/share/datasets/fashion-mnist")


def load_idx(split, limit=None):
    prefix = "train" if split == "train" else "t10k"
    with gzip.open(os.path.join(ROOT, f"{prefix}-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(os.path.join(ROOT, f"{prefix}-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return images, labels


class FashionMNIST(Dataset):
    """(image: float32 tensor 1 x 28 x 28 in [0, 1], label: int) pairs, with an optional
    transform applied to the image tensor (e.g. a recalign.ProjectionTransform)."""

    def __init__(self, split="train", limit=None, transform=None):
        self.images, self.labels = load_idx(split, limit)
        self.transform = transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        img = torch.from_numpy(self.images[i].astype(np.float32) / 255.0).unsqueeze(0)
        if self.transform is not None:
            img = self.transform(img)
        return img, int(self.labels[i])
