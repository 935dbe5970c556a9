"""HDF5 files: image-shaped datasets read like the same array in an `.npz`, else a table."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vaekit.datasets.arrays import arrays_raw, fits_in_memory
from vaekit.datasets.raw import RawData
from vaekit.datasets.tables import read_table_file
from vaekit.errors import VaekitError, check


def read_hdf5(path: Path, o: dict) -> RawData:
    """An HDF5 file: arrays like an .npz when it holds an image-shaped dataset (3 or more
    dimensions) or --x-key names one (x, and y / factors where named), else a table (`--key`)."""
    import h5py

    keys = o.get("keys") or {}
    try:
        # a 64 MiB chunk cache: a compressed dataset read per batch decompresses each chunk less often
        f = h5py.File(path, "r", rdcc_nbytes=64 << 20, rdcc_nslots=100_003)
    except OSError as err:
        raise VaekitError(f"{path} is not a readable HDF5 file ({err}).") from None
    lazy = []  # datasets left open to be read per batch: the file stays open with them

    def read(name):
        ds = f[name]
        if len(ds.shape) < 2 or fits_in_memory(ds) or ds.dtype.kind not in "biuf":
            return ds[()]
        offset = ds.id.get_offset()
        if ds.chunks is None and offset is not None:  # contiguous and unfiltered: map it like a .npy
            return np.memmap(path, dtype=ds.dtype, mode="r", offset=offset, shape=ds.shape)
        lazy.append(name)
        return ds

    try:
        shapes = {}

        def visit(name, obj):  # (returns None: visititems stops at the first value returned)
            if isinstance(obj, h5py.Dataset):
                shapes[name] = obj.shape

        f.visititems(visit)
        table = keys.get("table")
        # a dataset of objects x quantities with its quantity names (`tables.objects_table`) is a table
        images = [n for n, shape in shapes.items() if len(shape) >= 3 and f"{n}_Names" not in shapes]
        if table in images and not keys.get("x"):
            keys = {**keys, "x": table}
        arrays = keys.get("x") or (("x" in shapes or images) and not table)
        if arrays:
            check(
                keys.get("x") or "x" in shapes or len(images) == 1,
                f"{path} holds {len(images)} image-shaped datasets ({', '.join(images)}); name the "
                "observations with --x-key.",
            )
            default = "x" if "x" in shapes else (images[0] if images else "x")
            return arrays_raw(path, list(shapes), read, keys, default_x=default)
    except BaseException:
        lazy.clear()  # nothing is returned: the file closes
        raise
    finally:
        if not lazy:
            f.close()
    return read_table_file(path, o)
