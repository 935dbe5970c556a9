"""The keys of summary.json, each written once: its meaning, its unit, and where it is shown.

The report's table, a sweep's rows, the line printed after training and the sweep's printed
table all read this registry, so a new summary statistic is one row here (a test fails for a key
`evaluate.summarize` writes without one). An objective's own terms (e.g. beta-TCVAE's `tc`) are
declared by the objective and stored under their own names; they are not listed here.
"""

from __future__ import annotations

from dataclasses import dataclass

NATS = "nats per example"


@dataclass(frozen=True)
class SummaryKey:
    """One summary.json key: `meaning` (a sentence for the report), `unit` ("" for counts and
    ratios), and `shown` in: "line" (the one line printed after training), "sweep" (a sweep's
    rows and report table), "sweep_print" (the table `vaekit sweep` prints)."""

    meaning: str
    unit: str = ""
    shown: tuple[str, ...] = ()


SUMMARY_KEYS: dict[str, SummaryKey] = {
    "elbo": SummaryKey(
        "evidence lower bound (beta = 1), higher is better", NATS, ("line", "sweep", "sweep_print")
    ),
    "rate": SummaryKey(
        "KL(q(z|x) || p(z)): how much information the code carries", NATS, ("line", "sweep", "sweep_print")
    ),
    "distortion": SummaryKey(
        "-E_q[log p(x|z)]: how badly x is reconstructed", NATS, ("line", "sweep", "sweep_print")
    ),
    "loss": SummaryKey(
        "what training minimised: the objective's value (distortion + beta * rate for the beta-ELBO)",
        NATS,
        ("sweep",),
    ),
    "nll": SummaryKey("importance-sampled -log p(x) (K samples: nll_samples)", NATS, ("line", "sweep")),
    "knn_accuracy": SummaryKey(
        "5-NN label accuracy from the latent means: semantic structure", "", ("line", "sweep", "sweep_print")
    ),
    "active_units": SummaryKey(
        "latent dimensions whose mean varies over x (Cov > 0.01)", "", ("line", "sweep", "sweep_print")
    ),
    "aggregate_posterior_kl": SummaryKey(
        "KL from the moment-matched aggregate posterior to the prior (lower is better; 0 = the codes fill "
        "an N(0, I) prior); large = an unshaped latent space",
        "nats",
        ("sweep", "sweep_print"),
    ),
    "mse": SummaryKey(
        "mean squared error per dimension of the reconstruction at q's mean (a typed table: in the "
        "encoder's feature units, over observed cells)",
        "",
        ("sweep",),
    ),
    "bits_per_dim": SummaryKey(
        "-log2 p(x) per data dimension from nll (or -elbo), in the convention bits_per_dim_convention "
        "names: for k-bit pixels with a density, the density of the [0, 1]-scaled values plus D log 2^k "
        "(papers' convention); none for a Bernoulli likelihood on grey levels",
        "bits per dimension",
        ("sweep",),
    ),
    "bits_per_dim_convention": SummaryKey("which bits/dim convention applies to this data and likelihood"),
    "elbo_samples": SummaryKey(
        "draws of z per example behind elbo, distortion and rate (the IS-NLL's own draws when nll is "
        "computed, so elbo <= iwae_bound for every example)"
    ),
    "elbo_stderr": SummaryKey("standard error of elbo over test examples", NATS),
    "distortion_stderr": SummaryKey("standard error of distortion over test examples", NATS),
    "rate_stderr": SummaryKey("standard error of rate over test examples", NATS),
    "nll_stderr": SummaryKey("standard error of nll over test examples", NATS),
    "nll_samples": SummaryKey("K, the importance samples behind nll"),
    "iwae_bound": SummaryKey("the IWAE bound with K = nll_samples (Burda et al., 2016): -nll, >= elbo", NATS),
    "nll_user_units": SummaryKey(
        "nll as a density of the data in its own units (the scaling's log-Jacobian included)", NATS
    ),
    "logistic_accuracy": SummaryKey("logistic-regression label accuracy from the latent means"),
    "beta": SummaryKey("the KL weight the model was evaluated at"),
    "n_test": SummaryKey("test examples evaluated"),
    "seconds": SummaryKey("training time, every epoch's test pass included", "s"),
}


def shown_in(view: str) -> tuple[str, ...]:
    """The keys shown in `view` ("line", "sweep", "sweep_print"), in registry order."""
    return tuple(name for name, key in SUMMARY_KEYS.items() if view in key.shown)


def meaning(name: str) -> str:
    """The report's explanation of key `name`, with its unit ("" for a key not registered)."""
    key = SUMMARY_KEYS.get(name)
    if key is None:
        return ""
    return f"{key.meaning}, {key.unit}" if key.unit else key.meaning
