"""Read image files at the values they store, whatever their Pillow mode and bit depth.

`read_folder` and `read_file` return an `ImageStack`: the pixel values as the files store them (no
scaling), the value that means full intensity, and one sentence per thing the user should know (grey
images promoted to RGB, alpha composited, CMYK converted, frames expanded...). Anything that cannot be
read faithfully is refused with one sentence naming the file, what it holds and the fix.

Decisions, so that callers and users can rely on them:

* Integer samples keep their stored values; `full_scale` is the largest value of the stored type:
  1, 3, 15, 255, 65535 or 2**32 - 1 for 1-, 2-, 4-, 8-, 16- and 32-bit unsigned samples, and 127, 32767
  or 2**31 - 1 for signed ones (signed TIFFs; negative values stay negative). Pillow's mode ``I`` is
  only a container: the file says what is in it (a 16-bit PNG is 16-bit even where Pillow opens it as
  ``I``; a 32-bit TIFF says whether it is signed). Float samples keep their values; `full_scale` is None.
* Palette images are expanded to their colours: one grey channel when every colour the image uses is
  grey, RGB otherwise; palette entries are 8-bit, so `full_scale` is 255.
* Transparency is composited onto a grey `background` (a fraction of full scale; 1.0, white, by
  default: how viewers and web pages show transparent images, so what the user saw) or kept as the last
  channel. Images without alpha in a stack that keeps it count as fully opaque.
* Multi-frame files (animated GIF/PNG, multi-page TIFF) give one example per frame; TIFF pages marked
  as reduced-resolution copies (thumbnails) or transparency masks are skipped.
* EXIF / TIFF orientation tags are applied, so images stand as viewers show them.
* Pillow has no 16-bit colour mode and keeps only the high byte of 16-bit RGB, RGBA and grey+alpha
  samples. Its decoders still undo the file's compression and filters correctly, so such frames are
  decoded a second time with the byte order of the final unpacking step swapped, which keeps the low
  bytes; the two halves give the exact 16-bit values.
"""

from __future__ import annotations

import hashlib
import re
import struct
import sys
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vaekit.datasets.raw import RawData, encode_labels
from vaekit.datasets.rows import MEMORY_LIMIT_HINT, memory_limit
from vaekit.errors import VaekitError, check
from vaekit.io import cache_dir

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff"})
ALPHA_CHOICES = ("composite", "keep")
# How notes tell the user to keep alpha instead of compositing it; the command line names the option.
ALPHA_KEEP_HINT = "--alpha keep"

# TIFF tags read to learn what Pillow's mode does not say.
_BITS_PER_SAMPLE = 258
_SAMPLE_FORMAT = 339
_SAMPLES_PER_PIXEL = 277
_NEW_SUBFILE_TYPE = 254
_ORIENTATION = 274
_KINDS = {1: "u", 2: "i", 3: "f"}  # TIFF SampleFormat -> unsigned int, signed int, float


@dataclass
class ImageStack:
    """Images read at the values their files store.

    x: (n, C, H, W) float32 (float64 when 32-bit integers exceed 2**24, float32's exact range), with
        C = 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA); alpha, when kept, is the last channel.
    full_scale: the value meaning full intensity (see the module docstring); None for float images.
    labels: per image, the sub-folder it lies in relative to the folder read, "/"-separated; "" at the
        top level and for `read_file`.
    names: per image, its file relative to the folder read, with " frame k" (from 1) for multi-frame files.
    notes: one sentence per thing the user should know, each said once.
    mode: a short description of x's layout, e.g. "16-bit grey" or "8-bit RGBA".
    """

    x: np.ndarray
    full_scale: float | None
    labels: list[str]
    names: list[str]
    notes: list[str] = field(default_factory=list)
    mode: str = ""


@dataclass
class _Frame:
    """One decoded frame, before the frames of a stack are brought to one layout."""

    name: str
    label: str
    data: np.ndarray  # (H, W, C) stored values: 1 or 3 colour channels, then alpha when `alpha`
    kind: str  # "u", "i" or "f"
    bits: int
    alpha: bool
    events: set[str]  # what the notes should mention about this frame: "cmyk", "rgbx", "rotated", ...

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.data.shape

    @property
    def peak(self) -> float:
        """The largest magnitude stored (what decides float32 or float64 for 32-bit integers)."""
        return max(-float(self.data.min()), float(self.data.max())) if self.data.size else 0.0

    @property
    def colour(self) -> bool:
        return self.shape[2] - self.alpha == 3

    def describe(self) -> str:
        return _describe(self.kind, self.bits, self.colour, self.alpha)

    def size(self) -> str:
        return f"{self.shape[1]}x{self.shape[0]} {self.describe()}"

    def summary(self) -> _FrameInfo:
        """What the layout of a stack needs of this frame, without its pixels."""
        peak = self.peak if self.kind != "f" and self.bits == 32 else 0.0
        return _FrameInfo(
            self.name, self.label, self.shape, self.kind, self.bits, self.alpha, self.events, peak
        )


@dataclass
class _FrameInfo:
    """A frame's description without its pixels (`_Frame.summary`): the streamed path plans a
    folder's layout from these, then decodes each frame again to write it."""

    name: str
    label: str
    shape: tuple[int, int, int]
    kind: str
    bits: int
    alpha: bool
    events: set[str]
    peak: float

    colour = _Frame.colour
    describe = _Frame.describe
    size = _Frame.size


def read_folder(path: Path, alpha: str = "composite", background: float = 1.0, listing=None) -> ImageStack:
    """Read every image under the folder `path` (sub-folders too; their names become labels).

    Files are taken in sorted path order, by suffix (`IMAGE_SUFFIXES`, any case); names starting with
    "." (hidden files, macOS "._" resource forks) are skipped, and a note says so. Every frame of a
    multi-frame file is one image.

    alpha: "composite" blends transparent pixels onto `background`; "keep" keeps alpha as the last
        channel. background: grey level in [0, 1] of full scale.
    listing: `folder_files(path)` when the caller has it already (a large folder is listed once).
    Returns an `ImageStack` with x of shape (n, C, H, W); see `ImageStack`.
    Raises VaekitError for an empty folder, an unreadable file, or images that cannot share one array
    (different sizes, or different bit depths other than 1-, 2- and 4-bit grey among 8-bit images).
    """
    path = Path(path)
    _check_options(alpha, background)
    files, hidden = listing or folder_files(path)
    frames, per_file = [], []
    for p in files:
        got, skipped = _read_frames(p, *_name_and_label(path, p))
        frames += got
        per_file.append((p.relative_to(path).as_posix(), len(got), skipped))
    return _stack(frames, f"The images in {path}", alpha, background, _folder_notes(per_file, hidden))


def folder_files(path: Path) -> tuple[list[Path], int]:
    """The image files under the folder `path` in sorted order (`read_folder`'s rules), and how
    many hidden ones were skipped. Raises `VaekitError` for a path that is not a folder or a
    folder without images."""
    check(path.is_dir(), f"{path} is not a folder; give a folder of images or use read_file for one file.")
    files, hidden = [], 0
    for p in sorted(path.rglob("*")):
        if p.suffix.lower() not in IMAGE_SUFFIXES or not p.is_file():
            continue
        if any(part.startswith(".") for part in p.relative_to(path).parts):
            hidden += 1
            continue
        files.append(p)
    check(bool(files), f"The folder {path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}).")
    return files, hidden


def _name_and_label(folder: Path, p: Path) -> tuple[str, str]:
    relative = p.relative_to(folder)
    return relative.as_posix(), (relative.parent.as_posix() if relative.parent != Path(".") else "")


def _folder_notes(per_file: list[tuple[str, int, int]], hidden: int) -> list[str]:
    notes = _file_notes(per_file)
    if hidden:
        plural = "s" if hidden != 1 else ""
        notes.insert(0, f"{hidden} hidden image file{plural} (names starting with '.') skipped.")
    return notes


def _summaries(job) -> list[tuple[list[_FrameInfo], int]]:
    """Worker: each file's frame summaries and skipped pages (the streamed path's first pass)."""
    folder, files = job
    out = []
    for p in files:
        frames, skipped = _read_frames(p, *_name_and_label(folder, p))
        out.append(([f.summary() for f in frames], skipped))
    return out


def _filled(job) -> np.ndarray:
    """Worker: the files' frames filled in by the stack's layout, as one (frames, C, H, W) block."""
    folder, files, layout, dtype = job
    frames = [f for p in files for f in _read_frames(p, *_name_and_label(folder, p))[0]]
    return np.stack([layout.fill(f).astype(dtype, copy=False) for f in frames])


def stream_folder(
    path: Path,
    out: Path,
    alpha: str = "composite",
    background: float = 1.0,
    workers: int | None = None,
    listing=None,
) -> ImageStack:
    """`read_folder` for a folder larger than memory: the same images at the same values, written
    once into the memory-mapped array `out` (.npy; a partial file renamed when complete), decoded
    by `workers` processes (default: the CPUs, at most 8) in two passes: the first plans the
    stack's layout from each frame's description, the second decodes again and writes. 8- and
    16-bit integer images are stored as uint8 or uint16 (exactly their values), others as float.
    Returns an `ImageStack` whose x is the memory map (read-only). Raises as `read_folder`."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    path = Path(path)
    _check_options(alpha, background)
    files, hidden = listing or folder_files(path)
    block = 256
    blocks = [files[i : i + block] for i in range(0, len(files), block)]
    workers = workers or max(1, min(os.cpu_count() or 1, 8))
    spawn = multiprocessing.get_context("spawn")  # no fork of a process that may hold torch's threads
    with ProcessPoolExecutor(max_workers=workers, mp_context=spawn) as pool:
        described = [item for part in pool.map(_summaries, [(path, b) for b in blocks]) for item in part]
        infos = [f for frames, _ in described for f in frames]
        per_file = [
            (p.relative_to(path).as_posix(), len(fr), k) for p, (fr, k) in zip(files, described, strict=True)
        ]
        notes = _folder_notes(per_file, hidden)
        layout = _plan(infos, f"The images in {path}", alpha, background, notes)
        dtype = layout.stored_dtype(any(f.alpha for f in infos))
        partial = out.with_name(out.name + ".partial")
        x = np.lib.format.open_memmap(
            partial, mode="w+", dtype=dtype, shape=(len(infos), layout.channels, layout.height, layout.width)
        )
        start = 0
        for filled in pool.map(_filled, [(path, b, layout, dtype) for b in blocks]):
            x[start : start + len(filled)] = filled
            start += len(filled)
        x.flush()
        del x
    os.replace(partial, out)
    return ImageStack(
        x=np.load(out, mmap_mode="r"),
        full_scale=layout.full,
        labels=[f.label for f in infos],
        names=[f.name for f in infos],
        notes=notes,
        mode=_describe(layout.kind, layout.bits, layout.colour, layout.keep),
    )


def read_file(path: Path, alpha: str = "composite", background: float = 1.0) -> ImageStack:
    """Read one image file; each frame of a multi-frame file (animated GIF/PNG, multi-page TIFF) is one image.

    alpha, background: as for `read_folder`.
    Returns an `ImageStack` with x of shape (frames, C, H, W) and labels all "".
    Raises VaekitError when the file is missing or unreadable, or its frames cannot share one array.
    """
    path = Path(path)
    check(path.is_file(), f"{path} does not exist or is not a file; give an image file.")
    _check_options(alpha, background)
    frames, skipped = _read_frames(path, path.name, "")
    notes = _file_notes([(path.name, len(frames), skipped)])
    return _stack(frames, f"The frames of {path}", alpha, background, notes)


def _check_options(alpha: str, background: float) -> None:
    check(alpha in ALPHA_CHOICES, f"alpha must be 'composite' or 'keep', not {alpha!r}.")
    try:
        level = float(background)
    except (TypeError, ValueError):
        level = float("nan")
    check(
        0.0 <= level <= 1.0,
        f"The background must be a grey level between 0 (black) and 1 (white), not {background!r}.",
    )


# ----------------------------------------------------------------------------- one file


def _pillow_fails(path: Path, err: Exception) -> VaekitError:
    from PIL import UnidentifiedImageError

    detail = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, UnidentifiedImageError):  # its message repeats the path
        detail = "Pillow does not recognise its contents"
    what = _tiff_layout(path)
    if what:
        return VaekitError(
            f"{path} is a TIFF of {what}, which Pillow cannot read ({detail}); save it as 8- or 16-bit "
            "grey, 8- or 16-bit RGB(A) or 32-bit float grey TIFF, or remove it."
        )
    return VaekitError(
        f"{path} could not be read as an image ({detail}); replace it with a readable copy or remove it."
    )


@contextmanager
def _pillow(path: Path):
    """Around calls into Pillow: it raises many exception types for bad files (OSError, SyntaxError,
    ValueError, struct.error, zlib.error, EOFError...), which all mean the same thing to the user."""
    try:
        yield
    except VaekitError:
        raise
    except Exception as err:  # noqa: BLE001
        raise _pillow_fails(path, err) from None


def _read_frames(path: Path, name: str, label: str) -> tuple[list[_Frame], int]:
    """The frames of one file, and how many TIFF pages were skipped as thumbnails or masks."""
    from PIL import Image

    with _pillow(path):
        im = Image.open(path)
    with im:
        with _pillow(path):
            n = getattr(im, "n_frames", 1)  # a GIF is read through to count its frames
        header = _png_header(path) if im.format == "PNG" else None
        frames, skipped = [], 0
        for index in range(n):
            if index:
                with _pillow(path):
                    im.seek(index)
            if im.format == "TIFF" and n > 1 and int(im.tag_v2.get(_NEW_SUBFILE_TYPE, 0)) & 5:
                skipped += 1  # bit 0: a reduced-resolution copy; bit 2: a transparency mask
                continue
            frame_name = f"{name} frame {index + 1}" if n > 1 else name
            frames.append(_read_frame(im, path, index, frame_name, label, header))
    check(bool(frames), f"{path} holds only reduced-resolution or mask pages; save the full image itself.")
    return frames, skipped


def _file_notes(files: list[tuple[str, int, int]]) -> list[str]:
    """Notes on multi-frame files and skipped pages, given (name, frames, skipped pages) per file."""
    notes = []
    multi = [(name, n) for name, n, _ in files if n > 1]
    if len(multi) == 1:
        notes.append(f"{multi[0][0]} holds {multi[0][1]} frames; each frame is one image.")
    elif multi:
        notes.append(
            f"{len(multi)} files hold several frames (e.g. {multi[0][0]} has {multi[0][1]}); "
            "each frame is one image."
        )
    skipped = [(name, k) for name, _, k in files if k]
    if skipped:
        total = sum(k for _, k in skipped)
        notes.append(
            f"{total} reduced-resolution or mask TIFF page{'s' if total != 1 else ''} skipped "
            f"(thumbnails, not images; {skipped[0][0]} has {skipped[0][1]})."
        )
    return notes


def _png_header(path: Path) -> tuple[int, int]:
    """(bit depth, colour type) from the PNG's IHDR chunk, which always comes first."""
    with open(path, "rb") as f:
        head = f.read(26)
    return head[24], head[25]


def _tiff_format(im) -> tuple[str, int]:
    """(kind, bits) of the current TIFF page's first sample."""
    bits = im.tag_v2.get(_BITS_PER_SAMPLE, (1,))
    fmt = im.tag_v2.get(_SAMPLE_FORMAT, (1,))
    first = lambda v: int(v[0] if isinstance(v, (tuple, list)) else v)  # noqa: E731
    return _KINDS.get(first(fmt), "u"), first(bits)


# (samples per pixel, kind, bits) that Pillow reads; other TIFF layouts it refuses.
_PILLOW_TIFF_LAYOUTS = (
    {(1, "u", b) for b in (1, 2, 4, 8, 16, 32)}
    | {(1, "i", b) for b in (8, 16, 32)}
    | {
        (1, "f", 32),
        (2, "u", 8),
        (3, "u", 8),
        (3, "u", 16),
        (4, "u", 8),
        (4, "u", 16),
    }
)


def _tiff_layout(path: Path) -> str | None:
    """ "3 samples per pixel of 64-bit float" for a TIFF whose first page has a layout Pillow does not
    read, from its tags; None for other files (not a TIFF, a layout Pillow reads, unreadable tags)."""
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 16)
        order = {b"II": "<", b"MM": ">"}[data[:2]]
        (offset,) = struct.unpack(order + "I", data[4:8])
        (count,) = struct.unpack(order + "H", data[offset : offset + 2])
        tags = {}
        for i in range(count):
            entry = data[offset + 2 + 12 * i : offset + 14 + 12 * i]
            tag, typ, _, value = struct.unpack(order + "HHI4s", entry)
            if typ == 3:  # SHORT: the first value sits in the entry itself
                tags[tag] = struct.unpack(order + "H", value[:2])[0]
    except (KeyError, struct.error, OSError):
        return None
    samples, bits = tags.get(_SAMPLES_PER_PIXEL, 1), tags.get(_BITS_PER_SAMPLE, 1)
    kind = _KINDS.get(tags.get(_SAMPLE_FORMAT, 1), "u")
    if (samples, kind, bits) in _PILLOW_TIFF_LAYOUTS:
        return None
    number = {"u": "unsigned integer", "i": "signed integer", "f": "float"}[kind]
    return f"{samples} sample{'s' if samples != 1 else ''} per pixel of {bits}-bit {number}"


def _tile_rawmode(im) -> str:
    """The raw mode Pillow will unpack the current frame's pixels with (before it is loaded)."""
    if not im.tile:
        return ""
    args = im.tile[0][3]
    return args if isinstance(args, str) else str(args[0]) if args else ""


def _read_frame(im, path: Path, index: int, name: str, label: str, header) -> _Frame:
    """Decode the current frame of `im` to its stored values. Pillow's mode does not always say what the
    file stores, so the PNG header or the TIFF tags decide where they know better."""
    mode, events = im.mode, set()
    stored = _tiff_format(im) if im.format == "TIFF" else None
    if header is not None:
        stored = ("u", header[0])
    rawmode = _tile_rawmode(im)
    with _pillow(path):
        im.load()
        a = np.asarray(im)
    alpha = False
    wide = bool(stored and stored[1] == 16)  # 16-bit samples in a mode Pillow holds at 8 bits
    if mode == "1":
        kind, bits, data = "u", 1, a.astype(np.uint8)[..., None]
    elif mode == "L" and stored and stored[1] in (2, 4):
        # Pillow stretches 2- and 4-bit grey to 0-255 (x85, x17); undo it to the stored values
        kind, bits = "u", stored[1]
        data = (a // (255 // (2**bits - 1)))[..., None]
    elif mode == "L" and stored == ("i", 8):
        kind, bits, data = "i", 8, a.view(np.int8)[..., None]  # Pillow reads signed bytes as unsigned
    elif mode in ("L", "LA", "RGB", "RGBA", "RGBX") and not wide:
        kind, bits, data = "u", 8, a.reshape(a.shape[0], a.shape[1], -1)
        alpha = mode in ("LA", "RGBA")
        if mode == "RGBX":
            data, events = data[..., :3], {"rgbx"}
    elif mode in ("LA", "RGB", "RGBA"):
        kind, bits = "u", 16
        data = _read_16bit(im, path, index, rawmode, a)
        alpha = data.shape[2] in (2, 4)
    elif mode == "CMYK":
        # the naive conversion, without the file's colour profile: R = (1 - C)(1 - K) of full scale
        kind, bits = "u", 16 if wide else 8
        full = 2.0**bits - 1
        cmyk = (_read_16bit(im, path, index, rawmode, a) if wide else a).astype(np.float64) / full
        data = full * (1.0 - cmyk[..., :3]) * (1.0 - cmyk[..., 3:])
        events = {"cmyk"}
    elif mode in ("P", "PA"):
        kind, bits, data, alpha = "u", 8, *_expand_palette(im, a)
    elif mode.startswith("I;16"):
        kind, bits, data = "u", 16, a.astype(np.uint16)[..., None]
    elif mode == "I":
        kind, bits = stored if stored and stored[0] != "f" else ("i", 32)
        if (kind, bits) == ("u", 32):
            a = a.view(np.uint32)  # Pillow keeps unsigned 32-bit samples in a signed container
        data = a[..., None]
    elif mode == "F":
        kind, bits, data = "f", 32, a.astype(np.float32)[..., None]
    else:
        raise VaekitError(
            f"{path} is a {mode} image, which vaekit cannot read faithfully; convert it to grey or RGB "
            "(PNG or TIFF) and try again."
        )
    if not alpha:
        data = _apply_key_transparency(im, mode, data, _full_scale(kind, bits))
        alpha = data.shape[2] in (2, 4)
    data, rotated = _orient(im, data)
    if rotated:
        events.add("rotated")
    if kind == "f" and not np.isfinite(data).all():
        events.add("nonfinite")
    return _Frame(name, label, data, kind, bits, alpha, events)


def _read_16bit(im, path: Path, index: int, rawmode: str, high: np.ndarray) -> np.ndarray:
    """(H, W, C) uint16 samples of a 16-bit grey+alpha, RGB(A) or CMYK frame, of which Pillow decoded only
    the high bytes (`high`, unpacked with `rawmode`): decode the frame again, unpacking the other byte."""
    if im.format == "PNG" and index > 0:
        # an animation frame is blended onto the previous ones, which were decoded the usual way
        raise VaekitError(
            f"{path} frame {index + 1} is a 16-bit colour animation frame, which vaekit cannot read "
            "exactly; save the frames as separate 16-bit PNG files."
        )
    if rawmode == "LA;16B" and high.shape[2] == 4:
        # 16-bit grey + alpha PNG: Pillow fills RGBA with L, L, L, A. The plain 8-bit RGBA unpacker uses
        # the same 4 bytes per pixel, so it hands over both bytes of both samples.
        b = _decode_with_rawmode(path, index, "RGBA").astype(np.uint16)
        return b[..., 0::2] << 8 | b[..., 1::2]
    match = re.fullmatch(r"(RGBA?|CMYK);16([BLN])", rawmode)
    if match is None:
        raise VaekitError(
            f"{path} stores 16-bit {im.mode} samples in a layout vaekit cannot read exactly "
            f"({rawmode or 'unknown'}); save it as 8-bit colour or 16-bit grey, or remove it."
        )
    native = "L" if sys.byteorder == "little" else "B"
    order = {"B": "B", "L": "L", "N": native}[match[2]]
    low = _decode_with_rawmode(path, index, f"{match[1]};16{'L' if order == 'B' else 'B'}")
    return high.astype(np.uint16) << 8 | low.astype(np.uint16)


def _decode_with_rawmode(path: Path, index: int, rawmode: str) -> np.ndarray:
    from PIL import Image

    with _pillow(path), Image.open(path) as im:
        if index:
            im.seek(index)
        tiles = []
        for t in im.tile:
            args = rawmode if isinstance(t[3], str) else (rawmode, *t[3][1:])
            tiles.append(t._replace(args=args) if hasattr(t, "_replace") else (t[0], t[1], t[2], args))
        im.tile = tiles
        im.load()
        a = np.asarray(im)
    return a.reshape(a.shape[0], a.shape[1], -1)


def _expand_palette(im, index: np.ndarray) -> tuple[np.ndarray, bool]:
    """A palette frame's colours: ((H, W, C) uint8, has alpha). One channel when every colour it uses is
    grey; alpha only when some pixel it uses is not fully opaque."""
    own_alpha = None
    if index.ndim == 3:  # PA: palette index, alpha
        index, own_alpha = index[..., 0], index[..., 1]
    entries = np.array(im.getpalette("RGBA") or [], dtype=np.uint8).reshape(-1, 4)
    palette = np.zeros((256, 4), np.uint8)
    palette[:, 3] = 255
    palette[: len(entries)] = entries[:256]
    transparency = im.info.get("transparency")
    if isinstance(transparency, int) and 0 <= transparency < 256:
        palette[transparency, 3] = 0
    elif isinstance(transparency, bytes):
        palette[: len(transparency), 3] = np.frombuffer(transparency, np.uint8)[:256]
    used = palette[np.unique(index)]
    grey = bool(np.all(used[:, 0] == used[:, 1]) and np.all(used[:, 1] == used[:, 2]))
    colours = palette[index][..., :1] if grey else palette[index][..., :3]
    alphas = palette[index][..., 3:] if own_alpha is None else own_alpha[..., None]
    if own_alpha is not None or np.any(used[:, 3] < 255):
        return np.concatenate([colours, alphas], axis=2), True
    return colours, False


def _apply_key_transparency(im, mode: str, data: np.ndarray, full: float | None) -> np.ndarray:
    """PNG grey and RGB images may name one colour (tRNS) as fully transparent: add an alpha channel
    when a pixel has that colour."""
    key = im.info.get("transparency")
    if mode not in ("1", "L", "I", "I;16", "I;16B", "I;16L", "RGB") or key is None or isinstance(key, bytes):
        return data
    key = np.atleast_1d(np.asarray(key, dtype=np.int64))
    if key.size != data.shape[2]:
        return data
    clear = np.all(data == key.astype(data.dtype), axis=2)
    if not clear.any():
        return data
    opacity = np.where(clear, 0, full).astype(data.dtype)[..., None]
    return np.concatenate([data, opacity], axis=2)


# (flip left-right first?, number of quarter turns counter-clockwise) per EXIF orientation 2-8.
_ORIENTATIONS = {
    2: (True, 0),
    3: (False, 2),
    4: (True, 2),
    5: (True, 1),
    6: (False, 3),
    7: (True, 3),
    8: (False, 1),
}


def _orient(im, data: np.ndarray) -> tuple[np.ndarray, bool]:
    """Turn the frame as its EXIF / TIFF orientation tag says, so it stands as viewers show it."""
    try:
        orientation = int(im.getexif().get(_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - unreadable metadata must not cost the user the pixels
        return data, False
    if orientation not in _ORIENTATIONS:
        return data, False
    flip, turns = _ORIENTATIONS[orientation]
    if flip:
        data = data[:, ::-1]
    return np.ascontiguousarray(np.rot90(data, turns)), True


# ----------------------------------------------------------------------------- many frames, one array


def _describe(kind: str, bits: int, colour: bool, alpha: bool) -> str:
    number = {"u": f"{bits}-bit", "i": f"{bits}-bit signed", "f": f"{bits}-bit float"}[kind]
    layout = ("RGBA" if alpha else "RGB") if colour else ("grey+alpha" if alpha else "grey")
    return f"{number} {layout}"


def _full_scale(kind: str, bits: int) -> float | None:
    if kind == "f":
        return None
    return float(2**bits - 1) if kind == "u" else float(2 ** (bits - 1) - 1)


@dataclass
class _Layout:
    """How the frames of a stack become one array (`_plan`): the bits they are brought to, the
    channels, size and type, and the alpha handling."""

    kind: str
    bits: int
    full: float | None
    colour: bool
    keep: bool
    channels: int
    height: int
    width: int
    dtype: type
    background: float

    def fill(self, f: _Frame) -> np.ndarray:
        """One frame as (channels, height, width) in `dtype`, at the stack's values."""
        data = f.data
        if f.bits < self.bits:  # 1-, 2-, 4-bit grey among 8-bit images: scaled exactly
            data = data.astype(np.uint16) * ((2**self.bits - 1) // (2**f.bits - 1))
        out = np.empty((self.channels, self.height, self.width), self.dtype)
        values = data[..., : data.shape[2] - f.alpha]
        if f.alpha and not self.keep:
            opacity = data[..., -1:].astype(np.float64) / self.full
            values = values * opacity + self.background * self.full * (1.0 - opacity)
        out[: 3 if self.colour else 1] = np.moveaxis(values, 2, 0)  # grey broadcasts to R, G and B
        if self.keep:
            out[-1] = data[..., -1] if f.alpha else self.full
        return out

    def stored_dtype(self, with_alpha: bool):
        """The smallest type that holds every filled value exactly: uint8 or uint16 for 8- and
        16-bit integer images not composited onto a background, else `dtype`."""
        if self.kind == "u" and self.bits in (8, 16) and (self.keep or not with_alpha):
            return np.uint8 if self.bits == 8 else np.uint16
        return self.dtype


def _plan(frames, where: str, alpha: str, background: float, notes: list[str]) -> _Layout:
    """Check that the frames (or their `_FrameInfo`) can share one array and decide its layout;
    the notes the user should read are appended to `notes`."""
    n = len(frames)
    # 1-, 2- and 4-bit grey among 8-bit images: PNG optimisers store 8-bit images that use few grey levels
    # that way, and the scaling to 8 bits (x255, x85, x17) is exact.
    formats = {(f.kind, f.bits) for f in frames}
    target = None
    if len(formats) > 1 and all(kind == "u" and bits <= 8 for kind, bits in formats):
        target = max(bits for _, bits in formats)
        low = [f for f in frames if f.bits < target]
        notes.append(
            f"{len(low)} of {n} images store fewer than {target} bits per sample ({low[0].name} is "
            f"{low[0].describe()}); their values were scaled exactly to {target} bits to match the others."
        )
    counts = Counter((f.kind, target or f.bits) for f in frames)
    if len(counts) > 1:
        a, b = _first_two(frames, counts, lambda f: (f.kind, f.bits))
        raise VaekitError(
            f"{where} mix bit depths ({a.name} is {a.describe()}, {b.name} is {b.describe()}); "
            "convert them to one bit depth."
        )
    sizes = Counter(f.shape[:2] for f in frames)
    if len(sizes) > 1:
        a, b = _first_two(frames, sizes, lambda f: f.shape[:2])

        def example(f) -> str:
            others = sizes[f.shape[:2]] - 1
            return f"{f.name} is {f.size()}" + (
                f" like {others} other{'s' if others > 1 else ''}" if others else ""
            )

        raise VaekitError(
            f"{where} have {len(sizes)} different sizes ({example(a)}, {example(b)}); "
            "resize them to one size."
        )
    kind, bits = frames[0].kind, target or frames[0].bits
    full = _full_scale(kind, bits)
    colour = any(f.colour for f in frames)
    with_alpha = [f for f in frames if f.alpha]
    keep = alpha == "keep" and bool(with_alpha)
    h, w = frames[0].shape[:2]
    # float32 holds integers exactly up to 2**24; beyond that only float64 keeps the stored values
    big = kind != "f" and bits == 32 and any(f.peak > 2**24 for f in frames)
    notes += _layout_notes(frames, colour, with_alpha, keep, alpha, background)
    channels = (3 if colour else 1) + keep
    return _Layout(
        kind, bits, full, colour, keep, channels, h, w, np.float64 if big else np.float32, background
    )


def _stack(frames: list[_Frame], where: str, alpha: str, background: float, notes: list[str]) -> ImageStack:
    """Bring the frames to one number format, size and channel layout, and stack them as (n, C, H, W)."""
    layout = _plan(frames, where, alpha, background, notes)
    x = np.empty((len(frames), layout.channels, layout.height, layout.width), layout.dtype)
    for i, f in enumerate(frames):
        x[i] = layout.fill(f)
    return ImageStack(
        x=x,
        full_scale=layout.full,
        labels=[f.label for f in frames],
        names=[f.name for f in frames],
        notes=notes,
        mode=_describe(layout.kind, layout.bits, layout.colour, layout.keep),
    )


def _first_two(frames: list[_Frame], counts: Counter, key) -> tuple[_Frame, _Frame]:
    """The first frame of the most common group and the first frame of the next most common one."""
    (first, _), (second, _) = counts.most_common(2)
    return next(f for f in frames if key(f) == first), next(f for f in frames if key(f) == second)


def _who(hit: list[_Frame], n: int) -> tuple[str, bool]:
    """The subject of a note about the frames `hit` out of `n`, and whether it is plural."""
    if len(hit) == 1:
        return (hit[0].name if n == 1 else f"1 of {n} images ({hit[0].name})"), False
    return (f"All {n} images" if len(hit) == n else f"{len(hit)} of {n} images (e.g. {hit[0].name})"), True


_EVENT_NOTES = {  # event -> (singular, plural) predicate
    "cmyk": ("is CMYK", "are CMYK", "; converted to RGB as (1 - C)(1 - K), without any colour profile"),
    "rgbx": ("has", "have", " a 4th channel marked as padding (RGBX); it was dropped"),
    "rotated": ("was", "were", " turned or flipped as the orientation tag in the file says"),
    "nonfinite": ("holds", "hold", " NaN or infinite values"),
}


def _layout_notes(frames, colour, with_alpha, keep, alpha, background) -> list[str]:
    n, notes = len(frames), []
    grey = [f for f in frames if not f.colour]
    if colour and grey:
        who, plural = _who(grey, n)
        notes.append(
            f"{who} {'are' if plural else 'is'} greyscale; promoted to RGB to match the colour ones."
        )
    if with_alpha and keep:
        missing = [f for f in frames if not f.alpha]
        extra = ""
        if missing:
            who, plural = _who(missing, n)
            extra = f"; {who} {'have' if plural else 'has'} none and count as fully opaque"
        notes.append(f"Alpha kept as the last channel{extra}.")
    elif with_alpha:
        who, plural = _who(with_alpha, n)
        shade = {1.0: "white", 0.0: "black"}.get(float(background), f"grey ({background:g} of full scale)")
        notes.append(
            f"{who} {'have' if plural else 'has'} an alpha channel; it was composited onto "
            f"a {shade} background ({ALPHA_KEEP_HINT} keeps it as an extra channel)."
        )
    for event, (one, many, rest) in _EVENT_NOTES.items():
        hit = [f for f in frames if event in f.events]
        if hit:
            who, plural = _who(hit, n)
            notes.append(f"{who} {many if plural else one}{rest}.")
    return notes


# ----------------------------------------------------------------------------- read as a data set


def load_images(path: Path, image_options: dict | None = None) -> RawData:
    """A folder of images (sub-folders as labels) or one image file, at the values the files store
    (see `vaekit.datasets.images`): `full_scale` is the type's full range, so `unit` scaling divides by it."""

    opts = {k: v for k, v in (image_options or {}).items() if v is not None}
    if not path.is_dir():
        stack = read_file(path, **opts)
    else:
        listing = folder_files(path)  # listed once: a large folder holds many files
        if _folder_fits_in_memory(listing[0]):
            stack = read_folder(path, **opts, listing=listing)
        else:
            stack = _streamed_folder(path, listing, opts)
    raw = RawData(x=stack.x, kind="image", source=str(path), full_scale=stack.full_scale)
    raw.notes = list(stack.notes)
    raw.meta["image_mode"] = stack.mode
    if len(set(stack.labels)) > 1 or stack.labels[0]:
        raw.y, raw.label_names = encode_labels(np.asarray(stack.labels), f"{path} sub-folders")
    return raw


def _folder_fits_in_memory(files: list[Path]) -> bool:
    """Whether a folder's image `files` as float32 fit under the memory limit, estimated from
    their count and the first one's size and bands (no image is decoded)."""
    from PIL import Image

    try:
        with Image.open(files[0]) as im:
            per_image = im.width * im.height * len(im.getbands()) * 4
    except Exception:  # noqa: BLE001 - an unreadable first file: the in-memory reader says why
        return True
    return len(files) * per_image <= memory_limit()


def _streamed_folder(path: Path, listing, opts: dict):
    """A folder larger than memory, decoded once into a memory-mapped array in the cache
    (`vaekit.datasets.images.stream_folder`), keyed by the folder, the image options and every file's
    name, size and modification time: a later run on the same folder reads the map at once."""
    import json

    import filelock

    files = listing[0]
    key = hashlib.sha256(
        json.dumps(
            [str(path.resolve()), sorted(opts.items())]
            + [[p.relative_to(path).as_posix(), p.stat().st_size, p.stat().st_mtime_ns] for p in files]
        ).encode()
    ).hexdigest()[:20]
    folder = cache_dir() / "folders"
    folder.mkdir(parents=True, exist_ok=True)
    out, sidecar = folder / f"{key}.npy", folder / f"{key}.json"
    with filelock.FileLock(str(out) + ".lock"):
        if out.exists() and sidecar.exists():
            stack = ImageStack(x=np.load(out, mmap_mode="r"), **json.loads(sidecar.read_text()))
        else:
            stack = stream_folder(path, out, listing=listing, **opts)
            said = {k: getattr(stack, k) for k in ("full_scale", "labels", "names", "notes", "mode")}
            sidecar.write_text(json.dumps(said))
    limit = f"{memory_limit() / 2**30:.1f} GiB, {MEMORY_LIMIT_HINT}"
    stack.notes.append(
        f"{path.name}: larger than memory allows ({limit}): decoded once into {out} (memory-mapped, "
        f"{np.dtype(stack.x.dtype).name}), read from there per batch."
    )
    return stack
