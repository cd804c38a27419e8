"""recalign.decode_image against PIL 9.4 and torchvision (Debian python3-pil, python3-torchvision),
pixel for pixel: decoding (PNG of every colour type and bit depth, interlaced or not; JPEG
baseline, progressive, gray, CMYK, every chroma subsampling) equals Image.open(f).convert("RGB")
/ .convert("L"); decode + geometry equals torchvision's Resize(S) + CenterCrop((h, w)) on that
PIL image. The images are generated here (smooth fields plus noise, odd sizes); the PNG writer
below covers what PIL cannot write (interlacing, 16-bit colour, 2/4-bit gray), and PIL reads
all of it back as the oracle.

Run by hand: PYTHONPATH=build/python /usr/bin/python3 -m pytest -q tests/io/test_image_pixels.py
"""
import io
import struct
import zlib

import numpy as np
import pytest

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

import recalign  # noqa: E402

torchvision = pytest.importorskip("torchvision")
from torchvision import transforms  # noqa: E402

RNG = np.random.default_rng(20261130)
SIZES = [(1, 1), (2, 3), (17, 5), (37, 53), (64, 48), (120, 97)]


def field(h, w, c, rng=RNG):
    """A smooth random image plus noise: JPEG-like content with edges and gradients."""
    y, x = np.mgrid[0:h, 0:w]
    out = np.empty((h, w, c))
    for k in range(c):
        a, b, p = rng.uniform(0.02, 0.3, 3)
        out[..., k] = 127 + 100 * np.sin(a * x + p * 7) * np.cos(b * y + k) + rng.normal(0, 12, (h, w))
    return np.clip(out, 0, 255).astype(np.uint8)


# --- a PNG writer for every (bit depth, colour type), interlaced or not -----------------------

def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _pack_rows(samples, bits):
    """samples: (h, w*spp) integer array -> filtered scanlines (filter byte 0)."""
    rows = []
    for r in samples:
        if bits == 16:
            raw = r.astype(">u2").tobytes()
        elif bits == 8:
            raw = r.astype(np.uint8).tobytes()
        else:
            per = 8 // bits
            pad = (-len(r)) % per
            v = np.concatenate([r, np.zeros(pad, dtype=r.dtype)]).reshape(-1, per).astype(np.uint16)
            shifts = np.array([8 - bits * (i + 1) for i in range(per)])
            raw = (v << shifts).sum(axis=1).astype(np.uint8).tobytes()
        rows.append(b"\0" + raw)
    return b"".join(rows)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def write_png(samples, bits, color_type, interlace=False, palette=None, trns=None):
    """samples: (h, w, spp) unsigned integers in [0, 2^bits)."""
    h, w, spp = samples.shape
    ihdr = struct.pack(">IIBBBBB", w, h, bits, color_type, 0, 0, 1 if interlace else 0)
    if interlace:
        data = b""
        for x0, y0, dx, dy in ADAM7:
            sub = samples[y0::dy, x0::dx]
            if sub.size:
                data += _pack_rows(sub.reshape(sub.shape[0], -1), bits)
    else:
        data = _pack_rows(samples.reshape(h, -1), bits)
    out = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
    if palette is not None:
        out += _chunk(b"PLTE", palette.astype(np.uint8).tobytes())
    if trns is not None:
        out += _chunk(b"tRNS", trns)
    return out + _chunk(b"IDAT", zlib.compress(data)) + _chunk(b"IEND", b"")


def pil_pixels(data, channels):
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB" if channels == 3 else "L"))


def ours(data, channels, **kw):
    a = recalign.decode_image(data, channels=channels, **kw)
    return a[..., 0] if channels == 1 and kw.get("layout", "hwc") == "hwc" else a


# colour type -> samples per pixel
SPP = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
PNG_CASES = [(bits, ct) for ct, depths in [(0, [1, 2, 4, 8, 16]), (2, [8, 16]), (3, [1, 2, 4, 8]), (4, [8, 16]), (6, [8, 16])]
             for bits in depths]


def png_case(bits, ct, h, w, interlace, rng):
    spp = SPP[ct]
    top = (1 << bits) - 1
    samples = rng.integers(0, top + 1, size=(h, w, spp))
    if bits == 16 and ct == 0:
        # PIL reads 16-bit gray as 32-bit integers and clips at 255 converting: half the
        # pixels below 256 so both sides of the clip are seen.
        samples[::2] = rng.integers(0, 256, size=samples[::2].shape)
    palette = trns = None
    if ct == 3:
        entries = rng.integers(1, top + 2)  # a palette may be shorter than the index range
        palette = rng.integers(0, 256, size=(entries, 3))
        samples = np.minimum(samples, entries - 1)
        if rng.integers(2):
            trns = bytes(rng.integers(0, 256, size=min(entries, 3)).astype(np.uint8))
    elif ct in (0, 2) and rng.integers(2):
        trns = struct.pack(">" + "H" * spp, *([min(top, 3)] * spp))
    return write_png(samples, bits, ct, interlace, palette, trns)


@pytest.mark.parametrize("bits,ct", PNG_CASES)
@pytest.mark.parametrize("interlace", [False, True])
def test_png_decode_equals_pil(bits, ct, interlace):
    rng = np.random.default_rng(bits * 100 + ct * 10 + interlace)
    for h, w in SIZES:
        data = png_case(bits, ct, h, w, interlace, rng)
        for channels in (3, 1):
            expected = pil_pixels(data, channels)
            got = ours(data, channels)
            assert got.shape == expected.shape
            np.testing.assert_array_equal(got, expected, err_msg=f"PNG {bits}-bit type {ct} {h}x{w} C={channels}")


def pil_png(mode, h, w):
    a = field(h, w, 4)
    if mode in ("L", "1"):
        im = Image.fromarray(a[..., 0]).convert(mode)
    elif mode == "I;16":
        im = Image.fromarray((a[..., 0].astype(np.uint16) * 3).astype(np.uint16), "I;16")
    elif mode == "P":
        im = Image.fromarray(a[..., :3]).quantize(37)
    else:
        im = Image.fromarray(a[..., :len(mode)], mode)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["1", "L", "LA", "RGB", "RGBA", "P", "I;16"])
def test_png_written_by_pil(mode):
    for h, w in SIZES:
        data = pil_png(mode, h, w)
        for channels in (3, 1):
            np.testing.assert_array_equal(ours(data, channels), pil_pixels(data, channels), err_msg=f"{mode} {h}x{w}")


JPEG_CASES = [
    ("RGB", dict(quality=75)),
    ("RGB", dict(quality=95, subsampling=0)),  # 4:4:4
    ("RGB", dict(quality=90, subsampling=1)),  # 4:2:2
    ("RGB", dict(quality=85, subsampling=2)),  # 4:2:0
    ("RGB", dict(quality=80, progressive=True)),
    ("RGB", dict(quality=70, progressive=True, subsampling=0)),
    ("L", dict(quality=90)),
    ("L", dict(quality=60, progressive=True)),
    ("CMYK", dict(quality=90)),
    ("CMYK", dict(quality=75, progressive=True)),
]


def jpeg_bytes(mode, h, w, options, rng=RNG):
    a = field(h, w, 4, rng)
    im = Image.fromarray(a[..., 0]) if mode == "L" else Image.fromarray(a[..., :len(mode)], mode)
    buf = io.BytesIO()
    im.save(buf, "JPEG", **options)
    return buf.getvalue()


@pytest.mark.parametrize("mode,options", JPEG_CASES)
def test_jpeg_decode_equals_pil(mode, options):
    # Same library (libjpeg-turbo), same settings (ISLOW IDCT, fancy upsampling): identical.
    for h, w in SIZES:
        data = jpeg_bytes(mode, h, w, options)
        for channels in (3, 1):
            np.testing.assert_array_equal(ours(data, channels), pil_pixels(data, channels),
                                          err_msg=f"JPEG {mode} {options} {h}x{w} C={channels}")


def torchvision_pixels(data, channels, resize, crop, layout):
    steps = []
    if resize:
        steps.append(transforms.Resize(resize))
    if crop != (0, 0):
        steps.append(transforms.CenterCrop(crop))
    with Image.open(io.BytesIO(data)) as im:
        out = np.asarray(transforms.Compose(steps)(im.convert("RGB" if channels == 3 else "L")))
    if out.ndim == 2:
        out = out[..., None]
    return out.transpose(2, 0, 1) if layout == "chw" else out


GEOMETRIES = [(0, (5, 4)), (1, (0, 0)), (7, (0, 0)), (7, (7, 7)), (16, (15, 12)), (24, (24, 24)), (32, (30, 33)),
              (64, (64, 64)), (91, (80, 91)), (150, (149, 140)), (0, (130, 131)), (9, (12, 3))]


@pytest.mark.parametrize("resize,crop", GEOMETRIES)
def test_geometry_equals_torchvision(resize, crop):
    rng = np.random.default_rng(resize * 1000 + crop[0])
    sizes = SIZES + [(375, 500), (333, 256), (256, 333)]
    for i, (h, w) in enumerate(sizes):
        data = jpeg_bytes("RGB", h, w, dict(quality=90), rng) if i % 2 else pil_png("RGB", h, w)
        for channels in (3, 1):
            layout = "chw" if (i + channels) % 2 else "hwc"
            got = recalign.decode_image(data, channels=channels, resize=resize, crop=crop, layout=layout)
            expected = torchvision_pixels(data, channels, resize, crop, layout)
            assert got.shape == expected.shape, (h, w, resize, crop)
            np.testing.assert_array_equal(got, expected, err_msg=f"{h}x{w} Resize({resize}) CenterCrop({crop}) C={channels}")


# --- bad input: the same verdict as PIL, and a FileError naming the file ----------------------

def pil_reads(data):
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.convert("RGB")
        return True
    except Exception:  # PIL raises OSError, SyntaxError, ValueError... for broken files
        return False


def last_idat_end(png):
    """Offset just past the last IDAT chunk (its CRC included)."""
    pos, end = 8, 0
    while pos + 8 <= len(png):
        n = struct.unpack(">I", png[pos:pos + 4])[0]
        if png[pos + 4:pos + 8] == b"IDAT":
            end = pos + 12 + n
        pos += 12 + n
    return end


@pytest.mark.parametrize("kind", ["jpeg", "progressive", "cmyk", "png", "png-interlaced"])
def test_truncated_files_refused_where_pil_refuses(kind):
    """Every cut of a file: recalign refuses it exactly when PIL does (a FileError naming the
    file), and reads PIL's pixels when both read it. One stated exception: PIL decodes a PNG
    cut inside the last few bytes of its zlib stream (the Adler-32 after the last row) because
    it stops once it has every row; libpng reads the image data in pieces and recalign refuses
    the file. The test bounds that window to the last 16 bytes of the last IDAT chunk."""
    rng = np.random.default_rng(7)
    data = {"jpeg": lambda: jpeg_bytes("RGB", 40, 56, dict(quality=90), rng),
            "progressive": lambda: jpeg_bytes("RGB", 40, 56, dict(quality=90, progressive=True), rng),
            "cmyk": lambda: jpeg_bytes("CMYK", 33, 20, dict(quality=90), rng),
            "png": lambda: pil_png("RGB", 40, 56),
            "png-interlaced": lambda: png_case(8, 6, 30, 21, True, rng)}[kind]()
    window = range(last_idat_end(data) - 16, last_idat_end(data)) if kind.startswith("png") else range(0)
    cuts = sorted(set(range(0, len(data), 5)) | set(range(max(0, len(data) - 40), len(data))))
    for cut in cuts:
        part = data[:cut]
        pil_ok = pil_reads(part)
        try:
            got = ours(part, 3, name=f"cut-{cut}.img")
        except recalign.FileError as e:
            assert f"cut-{cut}.img" in str(e) and e.file == f"cut-{cut}.img"
            assert not pil_ok or cut in window, f"{kind} cut at {cut} of {len(data)}: PIL reads it, recalign refuses: {e}"
            continue
        assert pil_ok, f"{kind} cut at {cut} of {len(data)}: PIL refuses it, recalign reads it"
        np.testing.assert_array_equal(got, pil_pixels(part, 3))


def test_not_images_named():
    im = Image.fromarray(field(9, 7, 3))
    for fmt, word in [("BMP", "BMP"), ("GIF", "GIF"), ("TIFF", "TIFF"), ("PPM", "PNM"), ("WEBP", "WebP")]:
        buf = io.BytesIO()
        try:
            im.save(buf, fmt)
        except (KeyError, OSError):  # a PIL built without that codec
            continue
        with pytest.raises(recalign.FileError, match=f"x.{fmt.lower()}.*{word}.*only JPEG and PNG"):
            recalign.decode_image(buf.getvalue(), name=f"x.{fmt.lower()}")
    with pytest.raises(recalign.FileError, match="^empty.img: empty file"):
        recalign.decode_image(b"", name="empty.img")
    with pytest.raises(recalign.FileError, match="noise.img.*not a JPEG or PNG"):
        recalign.decode_image(bytes(RNG.integers(0, 256, 300).astype(np.uint8)), name="noise.img")
    # A valid header claiming more pixels than PIL's decompression-bomb limit: refused from the header.
    big = write_png(np.zeros((1, 1, 1), dtype=np.uint8), 8, 0)
    big = big[:16] + struct.pack(">II", 20000, 20000) + big[24:]
    big = big[:29] + struct.pack(">I", zlib.crc32(big[12:29]) & 0xFFFFFFFF) + big[33:]
    with pytest.raises(recalign.FileError, match="big.png.*20000x20000 pixels refused.*decompression-bomb"):
        recalign.decode_image(big, name="big.png")


def idat_length_fields(png):
    """Offsets of the bytes of every IDAT chunk's length field."""
    out, pos = set(), 8
    while pos + 8 <= len(png):
        n = struct.unpack(">I", png[pos:pos + 4])[0]
        if png[pos + 4:pos + 8] == b"IDAT":
            out |= set(range(pos, pos + 4))
        pos += 12 + n
    return out


@pytest.mark.parametrize("kind", ["jpeg", "progressive", "png", "png-interlaced"])
def test_corrupted_bytes_same_verdict_and_pixels_as_pil(kind):
    """Single bytes overwritten at random: where PIL reads the file recalign reads the same
    pixels (libjpeg's tolerated glitches included), and where PIL refuses so does recalign.
    Stated exception (PNG only, see test_truncated_files_refused_where_pil_refuses): PIL reads,
    recalign refuses, when the corrupted byte makes the last IDAT claim more bytes than the
    file has, or sits in the final bytes of the image data."""
    rng = np.random.default_rng(11)
    data = {"jpeg": lambda: jpeg_bytes("RGB", 40, 48, dict(quality=90), rng),
            "progressive": lambda: jpeg_bytes("RGB", 40, 48, dict(quality=90, progressive=True), rng),
            "png": lambda: pil_png("RGB", 30, 20),
            "png-interlaced": lambda: png_case(8, 2, 20, 30, True, rng)}[kind]()
    allowed = set()
    if kind.startswith("png"):
        allowed = idat_length_fields(data) | set(range(last_idat_end(data) - 16, last_idat_end(data)))
    for _ in range(150):
        corrupt = bytearray(data)
        at = int(rng.integers(len(corrupt)))
        corrupt[at] = int(rng.integers(256))
        corrupt = bytes(corrupt)
        pil_ok = pil_reads(corrupt)
        try:
            got = ours(corrupt, 3, name="corrupt.img")
        except recalign.FileError as e:
            assert "corrupt.img" in str(e)
            assert not pil_ok or at in allowed, f"{kind}: byte {at} changed: PIL reads it, recalign refuses: {e}"
            continue
        assert pil_ok, f"{kind}: byte {at} changed: PIL refuses it, recalign reads it"
        np.testing.assert_array_equal(got, pil_pixels(corrupt, 3), err_msg=f"{kind}: byte {at} changed")


def test_fuzz_seeds_equal_pil():
    """The fuzz harness's seeds (tests/fuzz/corpus/image, written by libjpeg's and libpng's own
    encoders: YCCK and arithmetic-coded JPEGs, which PIL cannot write, among them; byte 0 is
    the harness's mode byte): the same verdict and pixels as PIL. png_truncated is cut inside
    its zlib checksum, the stated exception (PIL reads it, recalign refuses)."""
    import os
    corpus = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz", "corpus", "image")
    names = sorted(os.listdir(corpus))
    assert any(n.startswith("jpeg_ycck") for n in names) and any(n.startswith("jpeg_arithmetic") for n in names)
    for name in names:
        with open(os.path.join(corpus, name), "rb") as f:
            data = f.read()[1:]
        pil_ok = pil_reads(data)
        try:
            got = ours(data, 3, name=name)
        except recalign.FileError as e:
            assert name in str(e)
            assert not pil_ok or name == "png_truncated", f"{name}: PIL reads it, recalign refuses: {e}"
            continue
        assert pil_ok, f"{name}: PIL refuses it, recalign reads it"
        np.testing.assert_array_equal(got, pil_pixels(data, 3), err_msg=name)
        np.testing.assert_array_equal(ours(data, 1), pil_pixels(data, 1), err_msg=name)
