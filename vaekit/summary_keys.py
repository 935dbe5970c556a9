"""The keys of summary.json, each written once: its meaning, its unit, and where it is shown.

The report's table, a sweep's rows, the line printed after training and the sweep's printed
table all read this registry, so a new summary statistic is one row here (a test fails for a key
`evaluate.summarize` writes without one). An objective's own terms (e.g. beta-TCVAE's `tc`) are
declared by the objective and stored under their own names; they are not listed here.

The disentanglement metrics' scores (`vaekit evaluate --metrics`) are rows too, each naming the
metric of `vaekit.metrics` that computes it (`metric`): the metric names (`METRICS`, what
`--metrics` takes), their headline scores (`headline`, what the demo and tables show) and the
scores each writes all come from here, without importing the metrics' libraries.
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
    metric: str = ""  # the disentanglement metric that writes it ("" for the others)


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
    "mutual_information": SummaryKey(
        "I_q(x; z): how much the code tells about the example, under the encoder, with q(z) the mixture "
        "of the test codes' posteriors (Hoffman & Johnson, 2016; rate = this + KL(q(z) || p(z))); at most "
        "log n_test",
        NATS,
        ("sweep",),
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
    # disentanglement metrics (Locatello et al., 2019, as disentanglement_lib computes them); the
    # first row of each metric is its headline score
    "mig": SummaryKey(
        "mutual information gap: per factor, the gap between the two codes most informative about it, "
        "over its entropy (Chen et al., 2018); 1 = each factor in one code",
        metric="mig",
    ),
    "mig_sup": SummaryKey(
        "MIG-sup: per code, the gap between the two factors it is most informative about, each over its "
        "entropy (Li et al., 2020); 1 = each code holds one factor",
        metric="mig",
    ),
    "dci_disentanglement": SummaryKey(
        "DCI disentanglement: how much each code's importance goes to one factor (Eastwood & Williams, 2018)",
        metric="dci",
    ),
    "dci_completeness": SummaryKey(
        "DCI completeness: how much each factor is held by one code", metric="dci"
    ),
    "dci_informativeness": SummaryKey(
        "DCI informativeness: test accuracy of predicting the factors from the codes", metric="dci"
    ),
    "sap": SummaryKey(
        "separated attribute predictability: mean gap between the two codes best predicting each factor "
        "(Kumar et al., 2018)",
        metric="sap",
    ),
    "modularity": SummaryKey(
        "modularity: how much each code depends on one factor only (Ridgeway & Mozer, 2018)",
        metric="modularity",
    ),
    "explicitness": SummaryKey(
        "explicitness: ROC AUC of a linear classifier of each factor value from the codes (Ridgeway & "
        "Mozer, 2018)",
        metric="modularity",
    ),
    "betavae_score": SummaryKey(
        "beta-VAE score: accuracy of telling which factor is held fixed in a pair of batches (Higgins et "
        "al., 2017)",
        metric="betavae",
    ),
    "factorvae_score": SummaryKey(
        "FactorVAE score: majority-vote accuracy of naming the fixed factor from the code of least "
        "variance (Kim & Mnih, 2018)",
        metric="factorvae",
    ),
}

# the disentanglement metrics, in registry order: what `vaekit evaluate --metrics` takes
METRICS: tuple[str, ...] = tuple(dict.fromkeys(k.metric for k in SUMMARY_KEYS.values() if k.metric))


def headline(metric: str) -> str:
    """The summary key that stands for `metric` in tables and the demo (its first row)."""
    return next(name for name, key in SUMMARY_KEYS.items() if key.metric == metric)


def scores_of(metric: str) -> tuple[str, ...]:
    """The summary keys `metric` writes, in registry order."""
    return tuple(name for name, key in SUMMARY_KEYS.items() if key.metric == metric)


def shown_in(view: str) -> tuple[str, ...]:
    """The keys shown in `view` ("line", "sweep", "sweep_print"), in registry order."""
    return tuple(name for name, key in SUMMARY_KEYS.items() if view in key.shown)


def meaning(name: str) -> str:
    """The report's explanation of key `name`, with its unit ("" for a key not registered)."""
    key = SUMMARY_KEYS.get(name)
    if key is None:
        return ""
    return f"{key.meaning}, {key.unit}" if key.unit else key.meaning
