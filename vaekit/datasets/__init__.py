"""The data layer: a name or a path in, validated arrays with a deterministic train/test split out.

A data set is a built-in name (`builtin`), a named set downloaded on first use and verified
(`downloads`), or a user's file in one of the `FORMATS` (`formats`: the one list and the one
suffix dispatch), each format read by its own module (`arrays` for .npy and .npz, `hdf5`,
`tables` for text, Parquet and HDF5 tables, `images` for image files and folders). Every reader
returns `RawData` in the user's units (`raw`); `load` (`dataset`) then validates it, splits it
and fixes what the likelihood sees, fitted on the training split only. Data larger than memory
stay as stored and are read per batch (`rows`). `sprites` renders the procedural dSprites.

The names below are the layer's public API, as `vaekit.datasets.load` and the rest.
"""

from vaekit.datasets.builtin import builtin_names, describe_builtins, is_named, register
from vaekit.datasets.dataset import (
    BINARIZE,
    SCALINGS,
    ColumnScaling,
    Dataset,
    Scaling,
    fit_scaling,
    from_raw,
    join_test_file,
    load,
    match_columns,
    record,
    select_columns,
    split_indices,
    validate,
)
from vaekit.datasets.formats import FORMATS, FileFormat, format_of, read_raw
from vaekit.datasets.raw import RawData
from vaekit.datasets.tables import MISSING_POLICIES, TABLE_OPTIONS, Columns

__all__ = [
    "BINARIZE",
    "FORMATS",
    "MISSING_POLICIES",
    "SCALINGS",
    "TABLE_OPTIONS",
    "ColumnScaling",
    "Columns",
    "Dataset",
    "FileFormat",
    "RawData",
    "Scaling",
    "builtin_names",
    "describe_builtins",
    "fit_scaling",
    "format_of",
    "from_raw",
    "is_named",
    "join_test_file",
    "load",
    "match_columns",
    "read_raw",
    "record",
    "register",
    "select_columns",
    "split_indices",
    "validate",
]
