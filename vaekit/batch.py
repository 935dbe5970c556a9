"""A batch record: the observations and whatever conditions travel with them.

Every model, objective and evaluation function takes one `Batch`, so a new input (labels today,
covariates tomorrow) is a field here, not a new argument threaded through every signature.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Batch:
    """Observations and their conditions.

    Args:
        x: (batch, *data_shape) in the units the likelihood sees (the data set's scaled `x`), or
            `vaekit.datasets.rows.Rows` (rows read as indexed: a slice or an index tensor gives a tensor).
        labels: (batch,) int64 class indices 0..n_classes-1, for a label-conditional model
            (Sohn et al., 2015); None otherwise.
        beta: (batch,) KL weights, for a beta-conditioned model (one per example); None means
            the model's own beta.
    A condition of shape (1,) is shared by every example.
    """

    x: torch.Tensor
    labels: torch.Tensor | None = None
    beta: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index) -> Batch:
        """The examples at `index` (a slice, an index tensor or a boolean mask), conditions too
        (a condition shared by all examples, shape (1,), stays shared)."""

        def pick(t):
            return t if t is None or (len(t) == 1 and len(self.x) != 1) else t[index]

        x = self.x.tensor(index) if getattr(self.x, "is_lazy_rows", False) else self.x[index]
        return Batch(x, pick(self.labels), pick(self.beta))

    def to(self, device) -> Batch:
        """The same batch with every tensor on `device`."""
        return Batch(
            self.x.to(device),
            None if self.labels is None else self.labels.to(device),
            None if self.beta is None else self.beta.to(device),
        )


def observations(x):
    """x as a Batch's `x`: a tensor as is, `vaekit.datasets.rows.Rows` kept unread (each index reads and
    scales its rows), anything else (an array) as a tensor."""
    return x if torch.is_tensor(x) or getattr(x, "is_lazy_rows", False) else torch.as_tensor(x)


def as_batch(x, beta=None, labels=None, lazy: bool = False) -> Batch:
    """A `Batch` from a Batch (returned as is, conditions given here override) or from x
    (batch, *data_shape) with optional `beta` (a number or (batch,)) and `labels` ((batch,) or one
    class index for every example; a single value is kept with shape (1,), shared). `Rows` are
    read whole, unless `lazy` (a caller that indexes the batch in slices keeps them unread)."""
    if getattr(x, "is_lazy_rows", False) and not lazy:
        x = x.tensor(slice(None))
    if isinstance(x, Batch) and getattr(x.x, "is_lazy_rows", False) and not lazy:
        x = Batch(x.x.tensor(slice(None)), x.labels, x.beta)
    if isinstance(x, Batch):
        if beta is None and labels is None:
            return x
        base = x
    else:
        base = Batch(observations(x))
    on_device = torch.is_tensor(base.x)
    device = base.x.device if on_device else torch.device("cpu")
    if labels is not None:
        labels = torch.as_tensor(labels, device=device).long().reshape(-1)
    if beta is not None:
        dtype = base.x.dtype if on_device else torch.float32
        beta = torch.as_tensor(beta, dtype=dtype, device=device).reshape(-1)
    return Batch(
        base.x,
        labels if labels is not None else base.labels,
        beta if beta is not None else base.beta,
    )
