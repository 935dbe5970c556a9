"""What every reader returns: `RawData`, a data set in the user's units, before any split or
scaling; and the label coding the readers share."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vaekit.errors import check


@dataclass
class RawData:
    """What a loader returns: observations in the user's units and what is known about them."""

    x: np.ndarray  # (n, *shape)
    y: np.ndarray | None = None  # (n,) integer labels
    label_names: list[str] | None = None
    factors: np.ndarray | None = None  # (n, n_factors) ground-truth factor values
    factor_names: list[str] | None = None
    kind: str = "tabular"  # "image" or "tabular"
    source: str = ""
    column_names: list[str] | None = None
    full_scale: float | None = None  # the value that means "full intensity" (255 for 8-bit)
    meta: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what the user should know, said once
    # a table file: its feature columns as read (user values, NA where missing), the type of
    # each, the identifier columns (carried, not modelled) and the --missing policy
    frame: object | None = None  # pandas.DataFrame
    column_types: dict | None = None
    ids: object | None = None  # pandas.DataFrame of identifier columns
    missing: str = "refuse"
    # rows with a cell the model gives probability zero (`apply.read_for_run(outside="mark")`)
    outside: np.ndarray | None = None  # (n,) bool


def encode_labels(labels: np.ndarray, what: str) -> tuple[np.ndarray, list[str] | None]:
    """Labels as int64 codes 0..k-1, and their names when they were text (None for whole
    numbers, kept as they are). Raises `VaekitError` for NaN or Inf labels."""
    labels = np.asarray(labels).reshape(-1)
    if np.issubdtype(labels.dtype, np.integer):
        return labels.astype(np.int64), None
    if np.issubdtype(labels.dtype, np.floating):
        check(np.all(np.isfinite(labels)), f"{what} holds NaN or Inf labels; fix those labels.")
        if np.all(labels == np.round(labels)):
            return labels.astype(np.int64), None
    text = np.char.strip(labels.astype(str))
    try:  # labels written as whole numbers ("0", "1.0") are those numbers, whichever file they are in
        numbers = text.astype(np.float64)
    except ValueError:
        numbers = None
    if numbers is not None and np.all(np.isfinite(numbers)) and np.all(numbers == np.round(numbers)):
        return numbers.astype(np.int64), None
    names, codes = np.unique(text, return_inverse=True)
    return codes.astype(np.int64), [str(n) for n in names]
