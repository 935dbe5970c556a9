"""vaekit.datasets.images reads every Pillow mode and bit depth at the values the file stores.

Files are written in tmp_path with Pillow, or, for what Pillow cannot write (16-bit colour PNG and TIFF,
2- and 4-bit grey PNG, unsigned 32-bit and signed TIFF), with the small encoders below, which follow the
PNG and TIFF specifications. Every test checks the values read, not only that no error occurred."""

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps, PngImagePlugin, TiffImagePlugin, features

from vaekit.datasets import images
from vaekit.errors import VaekitError

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    # CI runs one fixed set of examples (no flaky failures there); local runs keep exploring
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
RNG = np.random.default_rng(0)


# ----------------------------------------------------------------------------- encoders Pillow lacks


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png(
    path: Path, a: np.ndarray, colour_type: int, depth: int, filters=(0,), trns: bytes = b""
) -> Path:
    """A non-interlaced PNG of `a` ((H, W) or (H, W, C) samples), each row using the next of `filters`
    (0 none, 1 sub, 2 up, 3 average, 4 Paeth), so that the reader's unfiltering is exercised."""
    h, w = a.shape[:2]
    if depth < 8:  # pack samples into bytes, first pixel in the high bits
        per = 8 // depth
        padded = np.zeros((h, -(-w // per) * per), np.uint8)
        padded[:, :w] = a
        groups = padded.reshape(h, -1, per).astype(np.uint16)
        raw = sum(groups[:, :, k] << (8 - depth * (k + 1)) for k in range(per)).astype(np.uint8)
        bpp = 1
    else:
        raw = np.ascontiguousarray(a.astype(">u2" if depth == 16 else "u1")).view(np.uint8).reshape(h, -1)
        bpp = raw.shape[1] // w
    rows, prev = [], np.zeros(raw.shape[1], np.int32)
    for y in range(h):
        kind = filters[y % len(filters)]
        cur = raw[y].astype(np.int32)
        left = np.r_[np.zeros(bpp, np.int32), cur[:-bpp]]
        up_left = np.r_[np.zeros(bpp, np.int32), prev[:-bpp]]
        if kind == 4:
            p = left + prev - up_left
            pa, pb, pc = abs(p - left), abs(p - prev), abs(p - up_left)
            predicted = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, up_left))
        else:
            predicted = [0 * cur, left, prev, (left + prev) // 2][kind]
        rows.append(bytes([kind]) + ((cur - predicted) % 256).astype(np.uint8).tobytes())
        prev = cur
    header = struct.pack(">IIBBBBB", w, h, depth, colour_type, 0, 0, 0)
    body = _chunk(b"IHDR", header) + (_chunk(b"tRNS", trns) if trns else b"")
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + body + _chunk(b"IDAT", zlib.compress(b"".join(rows))) + _chunk(b"IEND", b"")
    )
    return path


def write_tiff(path: Path, a: np.ndarray, dtype: str, big_endian=False, deflate=False, cmyk=False) -> Path:
    """A one-strip TIFF of `a` ((H, W) grey, (H, W, 3/4) RGB(A) or, with `cmyk`, (H, W, 4) CMYK) with
    samples of numpy `dtype`."""
    h, w = a.shape[:2]
    c = 1 if a.ndim == 2 else a.shape[2]
    e = ">" if big_endian else "<"
    dt = np.dtype(dtype)
    data = a.astype(dt.newbyteorder(e)).tobytes()
    data = zlib.compress(data) if deflate else data
    fmt = {"u": 1, "i": 2, "f": 3}[dt.kind]
    tags = {
        256: [w],
        257: [h],
        258: [dt.itemsize * 8] * c,
        259: [8 if deflate else 1],
        262: [5 if cmyk else 1 if c == 1 else 2],
        273: [0],
        277: [c],
        278: [h],
        279: [len(data)],
        284: [1],
        339: [fmt] * c,
    }
    if c == 4 and not cmyk:
        tags[338] = [2]  # unassociated alpha
    n = len(tags)
    extra_at = 8 + 2 + 12 * n + 4

    def ifd(data_at: int) -> tuple[bytes, bytes]:
        entries, extra = b"", b""
        for tag, values in sorted(tags.items()):
            values = [data_at] if tag == 273 else values
            typ, code = (4, "I") if tag in (273, 279) else (3, "H")
            payload = struct.pack(e + code * len(values), *values)
            if len(payload) <= 4:
                entries += struct.pack(e + "HHI", tag, typ, len(values)) + payload.ljust(4, b"\0")
            else:
                entries += struct.pack(e + "HHII", tag, typ, len(values), extra_at + len(extra))
                extra += payload
        return entries, extra

    entries, extra = ifd(0)
    entries, extra = ifd(extra_at + len(extra))
    head = (b"MM\0*" if big_endian else b"II*\0") + struct.pack(e + "I", 8) + struct.pack(e + "H", n)
    path.write_bytes(head + entries + struct.pack(e + "I", 0) + extra + data)
    return path


def chw(a: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) -> (C, H, W), as the stack holds one image."""
    return a[None] if a.ndim == 2 else np.moveaxis(a, 2, 0)


def save(path: Path, a: np.ndarray, **kwargs) -> Path:
    Image.fromarray(a).save(path, **kwargs)
    return path


# ----------------------------------------------------------------------------- one file per mode


def _palette_image(colours: np.ndarray, index: np.ndarray) -> Image.Image:
    im = Image.fromarray(index.astype(np.uint8)).convert("P")  # keeps the indices; palette replaced below
    im.putpalette(colours.astype(np.uint8).ravel().tolist())
    return im


GREY8 = RNG.integers(0, 256, (5, 7), dtype=np.uint8)
RGB8 = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)
RGBA8 = RNG.integers(0, 256, (5, 7, 4), dtype=np.uint8)
LA8 = RNG.integers(0, 256, (5, 7, 2), dtype=np.uint8)
BITS = RNG.integers(0, 2, (5, 7)).astype(bool)
G16 = RNG.integers(1000, 1401, (5, 7)).astype(np.uint16)  # what a 12-bit sensor stores in a 16-bit PNG
RGB16 = RNG.integers(0, 65536, (5, 7, 3)).astype(np.uint16)
RGBA16 = RNG.integers(0, 65536, (5, 7, 4)).astype(np.uint16)
LA16 = RNG.integers(0, 65536, (5, 7, 2)).astype(np.uint16)
I32 = np.array([[-(2**31), -5, 0, 7], [1, 2**24 + 1, 2**31 - 1, 123456789]], np.int32)
U32 = np.array([[0, 1, 2**31, 2**32 - 1], [5, 2**24 + 3, 3_000_000_000, 77]], np.uint32)
F32 = np.array([[-1.5, 0.0, 3.25, 1e6], [1.0, -1e-3, 2.5, np.pi]], np.float32)
GREY_PALETTE = np.array([[0, 0, 0], [90, 90, 90], [255, 255, 255], [12, 200, 30]])  # last entry unused
COLOUR_PALETTE = np.array([[255, 0, 0], [0, 128, 255], [40, 40, 40]])
INDEX = RNG.integers(0, 3, (5, 7))


def _cmyk(a: np.ndarray) -> Image.Image:
    return Image.frombytes("CMYK", a.shape[1::-1], a.astype(np.uint8).tobytes())


CMYK = RNG.integers(0, 256, (5, 7, 4), dtype=np.uint8)
CMYK_AS_RGB = 255.0 * (1 - CMYK[..., :3] / 255.0) * (1 - CMYK[..., 3:] / 255.0)
CMYK16 = RNG.integers(0, 65536, (5, 7, 4)).astype(np.uint16)
CMYK16_AS_RGB = 65535.0 * (1 - CMYK16[..., :3] / 65535.0) * (1 - CMYK16[..., 3:] / 65535.0)

# name -> (write the file into a folder, expected (H, W[, C]) values, full_scale, mode)
CASES = {
    "1-bit PNG": (lambda d: save(d / "a.png", BITS), BITS.astype(np.uint8), 1, "1-bit grey"),
    "1-bit TIFF": (lambda d: save(d / "a.tif", BITS), BITS.astype(np.uint8), 1, "1-bit grey"),
    "1-bit BMP": (lambda d: save(d / "a.bmp", BITS), BITS.astype(np.uint8), 1, "1-bit grey"),
    "2-bit PNG": (lambda d: write_png(d / "a.png", GREY8 % 4, 0, 2), GREY8 % 4, 3, "2-bit grey"),
    "4-bit PNG": (
        lambda d: write_png(d / "a.png", GREY8 % 16, 0, 4, (0, 1, 4)),
        GREY8 % 16,
        15,
        "4-bit grey",
    ),
    "8-bit grey PNG": (lambda d: save(d / "a.png", GREY8), GREY8, 255, "8-bit grey"),
    "8-bit grey BMP": (lambda d: save(d / "a.bmp", GREY8), GREY8, 255, "8-bit grey"),
    "8-bit grey TIFF": (lambda d: save(d / "a.tif", GREY8), GREY8, 255, "8-bit grey"),
    "8-bit grey GIF": (lambda d: save(d / "a.gif", GREY8), GREY8, 255, "8-bit grey"),
    "grey palette PNG": (
        lambda d: _palette_image(GREY_PALETTE, INDEX).save(d / "a.png") or d / "a.png",
        GREY_PALETTE[INDEX][..., 0],
        255,
        "8-bit grey",
    ),
    "colour palette PNG": (
        lambda d: _palette_image(COLOUR_PALETTE, INDEX).save(d / "a.png") or d / "a.png",
        COLOUR_PALETTE[INDEX],
        255,
        "8-bit RGB",
    ),
    "colour palette GIF": (
        lambda d: _palette_image(COLOUR_PALETTE, INDEX).save(d / "a.gif") or d / "a.gif",
        COLOUR_PALETTE[INDEX],
        255,
        "8-bit RGB",
    ),
    "16-bit grey PNG": (lambda d: save(d / "a.png", G16), G16, 65535, "16-bit grey"),
    "16-bit grey PNG, own encoder": (
        lambda d: write_png(d / "a.png", G16, 0, 16, (0, 1, 2, 3, 4)),
        G16,
        65535,
        "16-bit grey",
    ),
    "16-bit grey TIFF": (lambda d: save(d / "a.tif", G16), G16, 65535, "16-bit grey"),
    "16-bit grey big-endian TIFF": (
        lambda d: write_tiff(d / "a.tif", G16, "u2", big_endian=True),
        G16,
        65535,
        "16-bit grey",
    ),
    "16-bit RGB PNG": (
        lambda d: write_png(d / "a.png", RGB16, 2, 16, (0, 1, 2, 3, 4)),
        RGB16,
        65535,
        "16-bit RGB",
    ),
    "16-bit RGBA PNG": (
        lambda d: write_png(d / "a.png", RGBA16, 6, 16, (4, 3, 2, 1, 0)),
        RGBA16,
        65535,
        "16-bit RGBA",
    ),
    "16-bit grey+alpha PNG": (
        lambda d: write_png(d / "a.png", LA16, 4, 16, (1, 4, 3)),
        LA16,
        65535,
        "16-bit grey+alpha",
    ),
    "16-bit RGB TIFF": (lambda d: write_tiff(d / "a.tif", RGB16, "u2"), RGB16, 65535, "16-bit RGB"),
    "16-bit RGB big-endian TIFF": (
        lambda d: write_tiff(d / "a.tif", RGB16, "u2", big_endian=True),
        RGB16,
        65535,
        "16-bit RGB",
    ),
    "16-bit RGBA TIFF": (lambda d: write_tiff(d / "a.tif", RGBA16, "u2"), RGBA16, 65535, "16-bit RGBA"),
    "signed 8-bit TIFF": (
        lambda d: write_tiff(d / "a.tif", GREY8.astype(np.int16) - 128, "i1"),
        GREY8.astype(np.int16) - 128,
        127,
        "8-bit signed grey",
    ),
    "signed 16-bit TIFF": (
        lambda d: write_tiff(d / "a.tif", G16.astype(np.int32) * -20, "i2"),
        G16.astype(np.int32) * -20,
        32767,
        "16-bit signed grey",
    ),
    "32-bit int TIFF": (lambda d: save(d / "a.tif", I32), I32, 2**31 - 1, "32-bit signed grey"),
    "32-bit unsigned TIFF": (lambda d: write_tiff(d / "a.tif", U32, "u4"), U32, 2**32 - 1, "32-bit grey"),
    "float32 TIFF": (lambda d: save(d / "a.tif", F32), F32, None, "32-bit float grey"),
    "RGB PNG": (lambda d: save(d / "a.png", RGB8), RGB8, 255, "8-bit RGB"),
    "RGB TIFF": (lambda d: save(d / "a.tif", RGB8), RGB8, 255, "8-bit RGB"),
    "RGB BMP": (lambda d: save(d / "a.bmp", RGB8), RGB8, 255, "8-bit RGB"),
    "RGBA PNG": (lambda d: save(d / "a.png", RGBA8), RGBA8, 255, "8-bit RGBA"),
    "RGBA TIFF": (lambda d: save(d / "a.tif", RGBA8), RGBA8, 255, "8-bit RGBA"),
    "LA PNG": (lambda d: save(d / "a.png", LA8), LA8, 255, "8-bit grey+alpha"),
    "CMYK TIFF": (lambda d: _cmyk(CMYK).save(d / "a.tif") or d / "a.tif", CMYK_AS_RGB, 255, "8-bit RGB"),
    "16-bit CMYK TIFF": (
        lambda d: write_tiff(d / "a.tif", CMYK16, "u2", cmyk=True),
        CMYK16_AS_RGB,
        65535,
        "16-bit RGB",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_mode_reads_its_stored_values(tmp_path, case):
    write, expected, full_scale, mode = CASES[case]
    stack = images.read_file(write(tmp_path), alpha="keep")
    channels = 1 if expected.ndim == 2 else expected.shape[2]
    assert stack.x.shape == (1, channels, *expected.shape[:2])
    assert stack.full_scale == full_scale
    assert stack.mode == mode
    # exact: every case above is lossless (CMYK's conversion rounds to float32 only)
    np.testing.assert_array_equal(stack.x[0], chw(expected).astype(stack.x.dtype))
    if expected.dtype.kind in "biu":  # stored integers: float64 is used where float32 would round them
        assert np.array_equal(stack.x[0].astype(np.float64), chw(expected).astype(np.float64))


def test_16_bit_colour_reads_the_bytes_pillow_drops(tmp_path):
    """Pillow alone truncates 16-bit colour to its high bytes; the reader's high bytes must equal
    Pillow's decoding (an independent check of the unfiltering), its low bytes the written ones."""
    for filt in range(5):
        path = write_png(tmp_path / f"f{filt}.png", RGB16, 2, 16, (filt,))
        x = images.read_file(path).x[0].astype(np.uint16)
        np.testing.assert_array_equal(x >> 8, chw(np.asarray(Image.open(path))))
        np.testing.assert_array_equal(x & 255, chw(RGB16 & 255))


@pytest.mark.skipif(not features.check("libtiff"), reason="Pillow built without libtiff")
def test_16_bit_colour_compressed_tiff(tmp_path):
    for big_endian in (False, True):
        path = write_tiff(tmp_path / f"z{big_endian}.tif", RGB16, "u2", big_endian=big_endian, deflate=True)
        np.testing.assert_array_equal(images.read_file(path).x[0], chw(RGB16))


def test_jpeg_reads_the_decoded_values_unscaled(tmp_path):
    """JPEG is lossy: the values must be Pillow's decoding, unscaled, and near what was written."""
    smooth = np.add.outer(np.arange(16) * 8, np.arange(16) * 4).astype(np.uint8)
    colour = np.stack([smooth, smooth[::-1], smooth.T], axis=2)
    for name, a, channels in [("g.jpg", smooth, 1), ("c.jpeg", colour, 3)]:
        path = save(tmp_path / name, a, quality=95)
        stack = images.read_file(path)
        assert stack.x.shape == (1, channels, 16, 16) and stack.full_scale == 255
        np.testing.assert_array_equal(stack.x[0], chw(np.asarray(Image.open(path))))
        assert np.abs(stack.x[0] - chw(a)).max() < 12


def test_cmyk_jpeg_is_converted_and_said(tmp_path):
    path = tmp_path / "print.jpg"
    _cmyk(CMYK).save(path, quality=95)
    stored = np.asarray(Image.open(path)).astype(np.float64)  # the CMYK values as decoded
    stack = images.read_file(path)
    expected = 255.0 * (1 - stored[..., :3] / 255.0) * (1 - stored[..., 3:] / 255.0)
    np.testing.assert_allclose(stack.x[0], chw(expected), rtol=1e-6)
    assert stack.mode == "8-bit RGB"
    assert any("CMYK" in note and "print.jpg" in note for note in stack.notes)


def test_palette_greyness_is_judged_on_the_colours_used(tmp_path):
    """A palette whose unused entries are coloured still gives one channel when the image is grey."""
    path = tmp_path / "p.png"
    _palette_image(GREY_PALETTE, np.array([[0, 1], [2, 2]])).save(path)
    stack = images.read_file(path)
    assert stack.x.shape == (1, 1, 2, 2)
    np.testing.assert_array_equal(stack.x[0, 0], [[0, 90], [255, 255]])


def test_png_transparent_colour_key_becomes_alpha(tmp_path):
    a = np.array([[[10, 20, 30], [1, 2, 3]]], np.uint8)
    path = save(tmp_path / "k.png", a, transparency=(1, 2, 3))
    kept = images.read_file(path, alpha="keep")
    np.testing.assert_array_equal(kept.x[0, :, 0, 1], [1, 2, 3, 0])
    np.testing.assert_array_equal(kept.x[0, :, 0, 0], [10, 20, 30, 255])
    composited = images.read_file(path, background=0.0)
    np.testing.assert_array_equal(composited.x[0, :, 0], [[10, 0], [20, 0], [30, 0]])


def test_gif_transparency_is_composited(tmp_path):
    path = tmp_path / "t.gif"
    _palette_image(COLOUR_PALETTE, np.array([[0, 1, 2]])).save(path, transparency=1)
    x = images.read_file(path, background=1.0).x[0]
    np.testing.assert_array_equal(x[:, 0], [[255, 255, 40], [0, 255, 40], [0, 255, 40]])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_tag_turns_the_image_as_viewers_do(tmp_path, orientation):
    a = RNG.integers(0, 256, (3, 5, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[274] = orientation
    path = save(tmp_path / "o.png", a, exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)))
    stack = images.read_file(path)
    np.testing.assert_array_equal(stack.x[0], chw(expected))
    assert any("orientation" in note for note in stack.notes) == (orientation != 1)


# ----------------------------------------------------------------------------- folders


def test_grey_and_colour_images_share_rgb(tmp_path):
    save(tmp_path / "0.png", RGB8)
    save(tmp_path / "1.png", GREY8)
    _palette_image(GREY_PALETTE, INDEX).save(tmp_path / "2.gif")
    save(tmp_path / "3.png", GREY8[::-1].copy())
    stack = images.read_folder(tmp_path)
    assert stack.x.shape == (4, 3, 5, 7) and stack.mode == "8-bit RGB" and stack.full_scale == 255
    np.testing.assert_array_equal(stack.x[0], chw(RGB8))
    for i, grey in [(1, GREY8), (2, GREY_PALETTE[INDEX][..., 0]), (3, GREY8[::-1])]:
        for channel in range(3):
            np.testing.assert_array_equal(stack.x[i, channel], grey)
    promoted = [note for note in stack.notes if "greyscale" in note]
    assert len(promoted) == 1 and promoted[0].startswith("3 of 4 images") and "RGB" in promoted[0]


def test_1_bit_images_among_8_bit_ones_are_scaled_exactly(tmp_path):
    save(tmp_path / "a.png", GREY8)
    save(tmp_path / "b.png", BITS)
    write_png(tmp_path / "c.png", GREY8 % 4, 0, 2)
    stack = images.read_folder(tmp_path)
    assert stack.full_scale == 255 and stack.mode == "8-bit grey"
    np.testing.assert_array_equal(stack.x[1, 0], BITS * 255)
    np.testing.assert_array_equal(stack.x[2, 0], (GREY8 % 4) * 85)
    assert any("b.png is 1-bit grey" in note and "scaled exactly to 8 bits" in note for note in stack.notes)


@pytest.mark.parametrize(
    "first, second, words",
    [
        (lambda d: save(d / "a.png", GREY8), lambda d: save(d / "b.png", G16), ["8-bit grey", "16-bit grey"]),
        (lambda d: save(d / "a.png", RGB8), lambda d: save(d / "b.tif", G16), ["8-bit RGB", "16-bit grey"]),
        (lambda d: save(d / "a.png", G16), lambda d: save(d / "b.tif", F32), ["16-bit grey", "32-bit float"]),
        (
            lambda d: save(d / "a.tif", G16),
            lambda d: write_tiff(d / "b.tif", G16.astype(np.int32), "i2"),
            ["16-bit grey", "16-bit signed grey"],
        ),
    ],
)
def test_mixed_bit_depths_are_refused_naming_both(tmp_path, first, second, words):
    first(tmp_path)
    second(tmp_path)
    with pytest.raises(VaekitError) as err:
        images.read_folder(tmp_path)
    message = str(err.value)
    assert "mix bit depths" in message and "a." in message and "b." in message and "\n" not in message
    assert all(word in message for word in words), message


def test_mixed_sizes_message_names_sizes_and_channels(tmp_path):
    for i in range(3):
        save(tmp_path / f"{i}.png", RGB8)
    save(tmp_path / "odd.png", GREY8[:4, :6].copy())
    with pytest.raises(VaekitError) as err:
        images.read_folder(tmp_path)
    message = str(err.value)
    assert "2 different sizes" in message
    assert "0.png is 7x5 8-bit RGB like 2 others" in message
    assert "odd.png is 6x4 8-bit grey" in message


def test_same_size_grey_and_colour_are_not_a_size_error(tmp_path):
    """The old loader refused 32x32 RGB and 32x32 grey as '2 different sizes'."""
    save(tmp_path / "000.png", np.zeros((32, 32, 3), np.uint8))
    save(tmp_path / "001.png", np.full((32, 32), 7, np.uint8))
    x = images.read_folder(tmp_path).x
    assert x.shape == (2, 3, 32, 32) and np.all(x[1] == 7)


def test_alpha_composite_hides_what_is_under_transparency(tmp_path):
    a = np.zeros((1, 3, 4), np.uint8)
    a[0, :, 0] = 255  # red everywhere
    a[0, :, 3] = [0, 128, 255]  # transparent, half, opaque
    path = save(tmp_path / "r.png", a)
    half = 128 / 255
    for background, level in [(1.0, 255.0), (0.0, 0.0), (0.25, 63.75)]:
        stack = images.read_file(path, background=background)
        assert stack.x.shape == (1, 3, 1, 3) and stack.mode == "8-bit RGB"
        expected_red = [level, 255 * half + level * (1 - half), 255]
        expected_other = [level, level * (1 - half), 0]
        np.testing.assert_allclose(stack.x[0, 0, 0], expected_red, rtol=1e-6)
        np.testing.assert_allclose(stack.x[0, 1, 0], expected_other, rtol=1e-6, atol=1e-4)
        np.testing.assert_allclose(stack.x[0, 2, 0], expected_other, rtol=1e-6, atol=1e-4)
        assert sum("alpha" in note for note in stack.notes) == 1
    white = images.read_file(path).notes
    assert any("white background" in note and images.ALPHA_KEEP_HINT in note for note in white)


def test_alpha_composite_uses_the_16_bit_scale(tmp_path):
    a = np.array([[[40000, 0, 0, 0], [40000, 0, 0, 32768]]], np.uint16)  # transparent, then half
    stack = images.read_file(write_png(tmp_path / "a.png", a, 6, 16), background=0.5)
    grey, weight = 0.5 * 65535, 32768 / 65535
    np.testing.assert_allclose(stack.x[0, 0, 0], [grey, 40000 * weight + grey * (1 - weight)], rtol=1e-6)
    np.testing.assert_allclose(stack.x[0, 1:, 0], [[grey, grey * (1 - weight)]] * 2, rtol=1e-6)


def test_alpha_keep_in_a_folder_makes_the_others_opaque(tmp_path):
    save(tmp_path / "a.png", RGBA8)
    save(tmp_path / "b.png", RGB8)
    save(tmp_path / "c.png", LA8)
    stack = images.read_folder(tmp_path, alpha="keep")
    assert stack.x.shape == (3, 4, 5, 7) and stack.mode == "8-bit RGBA"
    np.testing.assert_array_equal(stack.x[0], chw(RGBA8))
    np.testing.assert_array_equal(stack.x[1, :3], chw(RGB8))
    np.testing.assert_array_equal(stack.x[1, 3], 255)
    np.testing.assert_array_equal(stack.x[2, :3], np.broadcast_to(LA8[..., 0], (3, 5, 7)))
    np.testing.assert_array_equal(stack.x[2, 3], LA8[..., 1])
    assert any("Alpha kept" in note and "b.png" in note and "opaque" in note for note in stack.notes)


def test_each_note_is_said_once(tmp_path):
    for i in range(5):
        save(tmp_path / f"{i}.png", RGBA8)
        save(tmp_path / f"g{i}.png", GREY8)
    notes = images.read_folder(tmp_path).notes
    assert len(notes) == len(set(notes)) == 2, notes
    assert notes[0].startswith("5 of 10 images (e.g. g0.png) are greyscale")
    assert notes[1].startswith("5 of 10 images (e.g. 0.png) have an alpha channel")


def test_labels_frames_and_hidden_files(tmp_path):
    (tmp_path / "cats" / "small").mkdir(parents=True)
    (tmp_path / "dogs").mkdir()
    save(tmp_path / "top.png", GREY8)
    save(tmp_path / "cats" / "small" / "c.png", GREY8)
    frames = [Image.fromarray(np.full((5, 7), v, np.uint8)) for v in (10, 20, 30)]
    frames[0].save(tmp_path / "dogs" / "run.gif", save_all=True, append_images=frames[1:])
    (tmp_path / "dogs" / "._run.gif").write_bytes(b"\0\5\26\7 AppleDouble resource fork")
    stack = images.read_folder(tmp_path)
    assert stack.labels == ["cats/small", "dogs", "dogs", "dogs", ""]
    assert stack.names[1:4] == ["dogs/run.gif frame 1", "dogs/run.gif frame 2", "dogs/run.gif frame 3"]
    np.testing.assert_array_equal(stack.x[1:4, 0, 0, 0], [10, 20, 30])
    np.testing.assert_array_equal(stack.x[4, 0], GREY8)
    assert any("hidden" in note for note in stack.notes)
    assert "dogs/run.gif holds 3 frames; each frame is one image." in stack.notes


def test_multi_page_16_bit_tiff_gives_one_image_per_page(tmp_path):
    pages = [Image.fromarray(G16 + k) for k in range(3)]
    pages[0].save(tmp_path / "p.tif", save_all=True, append_images=pages[1:])
    stack = images.read_file(tmp_path / "p.tif")
    assert stack.x.shape == (3, 1, 5, 7) and stack.full_scale == 65535
    for k in range(3):
        np.testing.assert_array_equal(stack.x[k, 0], G16 + k)


def test_tiff_thumbnail_pages_are_skipped(tmp_path):
    path = tmp_path / "scan.tif"
    thumbnail = {254: 1}  # NewSubfileType: a reduced-resolution copy of another page
    pages = [(np.full((5, 7), 9, np.uint8), {}), (np.full((3, 4), 5, np.uint8), thumbnail), (GREY8, {})]
    with open(path, "w+b") as fp, TiffImagePlugin.AppendingTiffWriter(fp, new=True) as tiff:
        for a, info in pages:
            Image.fromarray(a).save(tiff, format="TIFF", tiffinfo=info)
            tiff.newFrame()
    stack = images.read_file(path)
    assert stack.names == ["scan.tif frame 1", "scan.tif frame 3"]
    np.testing.assert_array_equal(stack.x[:, 0], [np.full((5, 7), 9), GREY8])
    assert any("1 reduced-resolution or mask TIFF page skipped" in note for note in stack.notes)


def test_16_bit_png_opened_as_mode_i_keeps_65535(tmp_path, monkeypatch):
    """Older Pillow opened 16-bit grey PNGs as mode I (32-bit int); the PNG header still says 16 bits."""
    monkeypatch.setitem(PngImagePlugin._MODES, (16, 0), ("I", "I;16B"))
    path = save(tmp_path / "old.png", G16)
    assert Image.open(path).mode == "I"
    stack = images.read_file(path)
    assert stack.full_scale == 65535 and stack.mode == "16-bit grey"
    np.testing.assert_array_equal(stack.x[0, 0], G16)


# ----------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "name, content",
    [
        ("empty.png", b""),
        ("text.png", b"not an image at all"),
        ("cut.png", None),  # a valid PNG cut in half
        ("garbage.jpg", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 3),
        ("header.gif", b"GIF89a\x05\x00\x05\x00"),
    ],
)
def test_unreadable_files_are_refused_naming_the_file(tmp_path, name, content):
    if content is None:
        full = save(tmp_path / "whole.png", RGB8).read_bytes()
        (tmp_path / "whole.png").unlink()
        content = full[: len(full) // 2]
    (tmp_path / name).write_bytes(content)
    for read in (images.read_file, images.read_folder):
        with pytest.raises(VaekitError) as err:
            read(tmp_path / name if read is images.read_file else tmp_path)
        message = str(err.value)
        assert name in message and "\n" not in message and message.endswith("."), message


def test_tiff_layout_pillow_cannot_read_is_named(tmp_path):
    path = write_tiff(tmp_path / "d.tif", F32.astype(np.float64), "f8")
    with pytest.raises(VaekitError, match=r"d\.tif is a TIFF of 1 sample per pixel of 64-bit float"):
        images.read_file(path)


def test_bad_options_and_empty_folders(tmp_path):
    save(tmp_path / "a.png", GREY8)
    with pytest.raises(VaekitError, match="alpha must be"):
        images.read_folder(tmp_path, alpha="drop")
    with pytest.raises(VaekitError, match="between 0"):
        images.read_file(tmp_path / "a.png", background=2.0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(VaekitError, match="holds no images"):
        images.read_folder(tmp_path / "empty")


# ----------------------------------------------------------------------------- property


# mode -> (formats Pillow writes it to losslessly, channels) ; "own" files come from the encoders above
MODES = {
    "1": (["png", "tif", "bmp"], 1),
    "L": (["png", "tif", "bmp", "gif"], 1),
    "P": (["png", "gif"], 3),
    "LA": (["png"], 2),
    "RGB": (["png", "tif", "bmp"], 3),
    "RGBA": (["png", "tif"], 4),
    "I;16": (["png", "tif"], 1),
    "I": (["tif"], 1),
    "F": (["tif"], 1),
    "grey 2-bit": (["own"], 1),
    "grey 4-bit": (["own"], 1),
    "RGB 16-bit": (["own"], 3),
    "RGBA 16-bit": (["own"], 4),
    "LA 16-bit": (["own"], 2),
}


def _random_image(mode: str, h: int, w: int, rng: np.random.Generator):
    """(array to write or a callable writing the file, expected (H, W, C) values)."""
    if mode == "1":
        a = rng.integers(0, 2, (h, w)).astype(bool)
        return a, a.astype(np.uint8)
    if mode in ("L", "LA", "RGB", "RGBA"):
        a = rng.integers(0, 256, (h, w, len(mode)), dtype=np.uint8)
        return (a[..., 0] if mode == "L" else a), a
    if mode == "P":
        colours = rng.integers(0, 256, (4, 3))
        colours[:, 1] = (colours[:, 0] + 1) % 256  # never grey, so always 3 channels
        index = rng.integers(0, 4, (h, w))
        return _palette_image(colours, index), colours[index]
    if mode == "I;16":
        a = rng.integers(0, 65536, (h, w)).astype(np.uint16)
        return a, a
    if mode == "I":
        a = rng.integers(-(2**31), 2**31, (h, w)).astype(np.int32)
        return a, a
    if mode == "F":
        a = (rng.standard_normal((h, w)) * 10.0 ** rng.integers(-3, 6)).astype(np.float32)
        return a, a
    depth = 16 if "16" in mode else int(mode.split()[1][0])
    channels = MODES[mode][1]
    a = rng.integers(0, 2**depth, (h, w, channels)).astype(np.uint16)
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    filters = tuple(rng.integers(0, 5, 3))

    def write(path):
        write_png(path, a[..., 0] if channels == 1 else a, colour_type, depth, filters)

    return write, a


@SETTINGS
@given(
    mode=st.sampled_from(list(MODES)),
    fmt_pick=st.integers(0, 3),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    seed=st.integers(0, 2**32 - 1),
)
def test_losslessly_written_images_read_back_exactly(tmp_path, mode, fmt_pick, h, w, seed):
    formats, channels = MODES[mode]
    fmt = formats[fmt_pick % len(formats)]
    source, expected = _random_image(mode, h, w, np.random.default_rng(seed))
    path = tmp_path / f"image.{'png' if fmt == 'own' else fmt}"
    if callable(source):
        source(path)
    elif isinstance(source, Image.Image):
        source.save(path)
    else:
        Image.fromarray(source).save(path)
    stack = images.read_file(path, alpha="keep")
    assert stack.x.shape == (1, channels, h, w), (mode, fmt)
    assert np.array_equal(stack.x[0].astype(np.float64), chw(expected).astype(np.float64)), (mode, fmt)
