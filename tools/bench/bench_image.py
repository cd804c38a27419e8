"""Image decoding and geometry, one image at a time on one thread: recalign.decode_image
(libjpeg-turbo / libpng + Pillow's resample, io/image.hpp) against PIL's Image.open +
convert("RGB") and torchvision's Resize + CenterCrop on it, on the same generated JPEGs
(smooth fields plus noise, 500x375 like ImageNet's, quality 90). Pixels are identical
(tests/io/test_image_pixels.py); this measures speed only. Best of 3 runs of N images each.

    PYTHONPATH=build/python /usr/bin/python3 tools/bench/bench_image.py [N]

recalign's numbers include the binding's per-call costs (a copy of the bytes, fresh buffers,
the NumPy array), which the readers avoid.
"""
import io
import sys
import time

import numpy as np
from PIL import Image
from torchvision import transforms

import recalign


def field(h, w, rng):
    y, x = np.mgrid[0:h, 0:w]
    out = np.empty((h, w, 3))
    for k in range(3):
        a, b, p = rng.uniform(0.02, 0.3, 3)
        out[..., k] = 127 + 100 * np.sin(a * x + p * 7) * np.cos(b * y + k) + rng.normal(0, 12, (h, w))
    return np.clip(out, 0, 255).astype(np.uint8)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 150
    rng = np.random.default_rng(3)
    files = []
    for _ in range(n):
        buf = io.BytesIO()
        Image.fromarray(field(375, 500, rng)).save(buf, "JPEG", quality=90)
        files.append(buf.getvalue())

    def best(f):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            f()
            times.append(time.perf_counter() - t0)
        return min(times)

    def pil(t=None):
        def run():
            for d in files:
                with Image.open(io.BytesIO(d)) as im:
                    rgb = im.convert("RGB")
                    np.asarray(t(rgb) if t else rgb)
        return run

    def ours(resize=0, crop=(0, 0)):
        def run():
            for d in files:
                recalign.decode_image(d, resize=resize, crop=crop)
        return run

    cases = [("decode only", pil(), ours()),
             ("Resize(64) + CenterCrop(64)", pil(transforms.Compose([transforms.Resize(64), transforms.CenterCrop(64)])),
              ours(64, (64, 64))),
             ("Resize(256) + CenterCrop(224)", pil(transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224)])),
              ours(256, (224, 224)))]
    print(f"{n} JPEGs 500x375, quality 90, one thread; images per second (best of 3)")
    for name, a, b in cases:
        ta, tb = best(a), best(b)
        print(f"  {name:31s} PIL/torchvision {n / ta:7.1f}   recalign {n / tb:7.1f}   recalign/PIL {ta / tb:5.2f}x")


if __name__ == "__main__":
    main()
