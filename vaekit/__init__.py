"""vaekit: variational autoencoders in practice. Train, see and measure the latent space."""

__version__ = "0.1.0"

from vaekit import datasets, evaluate, objectives, plots  # noqa: E402
from vaekit.errors import VaekitError  # noqa: E402
from vaekit.model import VAE  # noqa: E402
from vaekit.runs import load  # noqa: E402
from vaekit.train import Run  # noqa: E402
from vaekit.workflow import fit  # noqa: E402

__all__ = [
    "VAE",
    "Run",
    "VaekitError",
    "datasets",
    "evaluate",
    "fit",
    "load",
    "objectives",
    "plots",
    "__version__",
]
