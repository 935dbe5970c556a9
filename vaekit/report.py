"""Save a run's figures and write its self-contained report.html (figures embedded, offline).

Every string that comes from the user's data (labels, column names, file names) is escaped.
"""

from __future__ import annotations

import base64
import html
import io as _io
import json
import re
from pathlib import Path

import matplotlib.pyplot as plt

from vaekit import hub, io, plots, summary_keys

# the report's explanation of each summary key, from the one registry of them
EXPLAIN = {name: summary_keys.meaning(name) for name in summary_keys.SUMMARY_KEYS}


def save_figure(fig: plt.Figure, path: Path) -> None:
    """Save `fig` as a PNG (90 dpi, tight bounding box) to `path` atomically, then close it."""
    buffer = _io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    io.write_bytes(path, buffer.getvalue())


# figure name -> (summary.json matrix, title, colour-bar unit): drawn when `evaluate` stored it
HEATMAPS = {
    "mutual_information": (
        "mig_mutual_information",
        "mutual information between latent dimensions and factors (MIG's matrix)",
        "nats",
    ),
    "dci_importance": ("dci_importance", "DCI importance of each latent dimension per factor", "importance"),
}


def run_figures(model, data, history, summary: dict | None = None) -> dict:
    """name -> Figure for a run folder (with the metric matrices when the summary has them)."""
    summary = summary or {}
    matrices = summary.get("disentanglement", {}).get("matrices", {})
    factor_names = summary.get("disentanglement", {}).get("factor_names")
    traversal_kw = {}
    if "mig_mutual_information" in matrices:
        import numpy as np

        mi = np.asarray(matrices["mig_mutual_information"])
        active = np.flatnonzero(np.asarray(summary.get("per_dim_kl", [1] * len(mi))) > 0.01)
        order = active[np.argsort(-mi[active].max(1))] if len(active) else np.arange(len(mi))
        traversal_kw = {"order": order[:10], "names": [factor_names[mi[d].argmax()] for d in order[:10]]}
    figures = {
        "reconstructions": plots.reconstructions(model, data),
        "samples": plots.samples(model),
        "latent_space": plots.latent_space(model, data),
        "traversals": plots.traversals(model, data, **traversal_kw),
        "training_curves": plots.training_curves(history),
    }
    for name, (key, title, unit) in HEATMAPS.items():
        if key in matrices:
            figures[name] = plots.heatmap(matrices[key], factor_names, title, unit)
    if data.is_image:
        figures["latent_map"] = plots.latent_map(model, data)
        figures["manifold"] = plots.manifold(model)
    elif data.column_names is not None:
        figures["marginals"] = table_marginals(model, data)
    return figures


def table_marginals(model, data, n: int = 2000):
    """A table run's per-column marginals in the data's units: the test split, its
    reconstructions, and as many true samples of the model (x ~ p(x|z), z ~ p(z), the
    likelihood's noise included), discrete columns as bars over their rounded values."""
    import numpy as np
    import torch

    x = data.x_test[:n]
    labels = model.data_classes(data, "test")
    schema = getattr(model.likelihood, "schema", None)
    if schema is not None:  # typed columns: the test rows as read, the model's in the user's units
        labels = labels[: len(x)] if labels is not None else None
        with torch.no_grad():
            recon = model.reconstruct(torch.as_tensor(x), labels=labels).numpy()
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                drawn = model.sample(len(x), mean=False).numpy()
        panels = [
            ("data (test split)", data.extra["frame"].iloc[data.test_idx[:n]]),
            ("reconstruction (decoder's typical value at q's mean)", schema.to_user(recon)),
            ("samples x ~ p(x|z), z ~ p(z)", schema.to_user(drawn)),
        ]
        return plots.column_marginals(schema, panels)
    labels = labels[: len(x)] if labels is not None else None
    with torch.no_grad():
        batch = torch.as_tensor(x)
        recon = model.unscale_output(model.reconstruct(batch, labels=labels)).numpy()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            drawn = model.unscale_output(model.sample(len(x), mean=False)).numpy()
    original = data.to_user_units(np.asarray(x))
    panels = [
        ("data (test split)", original),
        ("reconstruction (decoder mean at q's mean)", recon),
        ("samples x ~ p(x|z), z ~ p(z)", drawn),
    ]
    discrete = data.extra.get("discrete_columns") or ()
    return plots.marginals(data.column_names, [(k, v.reshape(len(v), -1)) for k, v in panels], discrete)


class RunReport:
    """A `vaekit.train.fit` callback: when training ends, draw the run's figures and write
    report.html into the run folder (nothing for a run without a folder)."""

    def __init__(self, data):
        self.data = data

    def on_fit_end(self, run) -> None:
        if run.path is None:
            return
        model = run.model
        if next(model.parameters()).device.type != "cpu":  # figures are drawn from CPU arrays
            import copy

            model = copy.deepcopy(model).cpu()
        write_run(run.path, model, self.data, run.history, run.summary)


def write_run(out: Path, model, data, history, summary, extra_figures: dict | None = None) -> None:
    """Draw a run's figures (`run_figures` plus `extra_figures`, name -> Figure), save them as
    `out/figures/NAME.png` and write `out/report.html` with the summary table and every PNG in
    that folder, and the model card `out/README.md` (`vaekit.hub`). `model` must be on the CPU
    (the figures read its outputs as numpy arrays; `RunReport` passes a CPU copy)."""
    out = Path(out)
    figures = run_figures(model, data, history, summary)
    figures.update(extra_figures or {})
    for name, fig in figures.items():
        save_figure(fig, out / "figures" / f"{name}.png")
    body = data_section(data) + summary_table(summary)
    if not data.is_image and data.column_names is not None:  # a table's traversals, in its units
        table = plots.traversal_table(model, data)
        with io.atomic_path(out / "traversals.csv") as tmp:
            table.to_csv(tmp, index=False, float_format="%.6g")
        body += (
            "<h2>Traversals (decoder means, in the data's units; all in traversals.csv)</h2>"
            + table.head(27).to_html(index=False, float_format=lambda v: f"{v:.4g}")
        )
    write_html(out, f"vaekit run: {out.name}", body, sorted_pngs(out), explorable=model.kind == "vae")
    if (out / "config.yaml").exists():  # the model card, for sharing the folder as a hub model
        hub.write_card(out)


def data_section(data) -> str:
    """The report's account of the data: one line of what was read and split; for a typed table,
    each column used with its type, how it is modelled and its missing cells, the identifier
    and label columns; and every note about how the file was read (columns dropped and why,
    the dialect, missing cells)."""
    parts = [f"<h2>Data</h2><p>{html.escape(data.describe())}</p>"]
    if data.schema is not None:
        frame = data.extra.get("frame")
        rows = []
        for column in data.schema.columns:
            missing = int(frame[column.column].isna().sum()) if frame is not None else 0
            rows.append(
                f"<tr><td>{html.escape(column.column)}</td><td>{column.name}</td>"
                f"<td>{html.escape(column.describe())}</td><td>{missing}</td></tr>"
            )
        parts.append(
            "<table><tr><th>column</th><th>type</th><th>modelled as</th><th>missing cells</th></tr>"
            + "".join(rows)
            + "</table>"
        )
        if data.ids is not None:
            ids = ", ".join(html.escape(str(c)) for c in data.ids.columns)
            parts.append(f"<p>Row identifiers (carried into outputs, not modelled): {ids}.</p>")
    if data.label_names is not None or data.y is not None:
        label = (data.extra.get("load") or {}).get("label_column")
        if label:
            parts.append(f"<p>Labels: the column {html.escape(str(label))}.</p>")
    if data.notes:
        parts.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in data.notes) + "</ul>")
    return "".join(parts)


def sorted_pngs(out: Path) -> list[Path]:
    """The PNGs in `out/figures` in report order: the known figures first in a fixed order, then
    the rest by name."""
    order = [
        "latent_panels",
        "rate_distortion",
        "latent_space",
        "reconstructions",
        "samples",
        "traversals",
        "training_curves",
    ]
    pngs = list((out / "figures").glob("*.png"))
    return sorted(pngs, key=lambda p: (order.index(p.stem) if p.stem in order else 99, p.stem))


def summary_table(summary: dict) -> str:
    """An HTML table of the summary's scalar entries (floats to 6 significant digits) with the
    meaning of the known keys, and a line of package versions; lists and dicts are left out."""
    rows = []
    for key, value in summary.items():
        if isinstance(value, (dict, list)):
            continue
        text = f"{value:.6g}" if isinstance(value, float) else str(value)
        rows.append(
            f"<tr><td>{html.escape(key)}</td><td>{html.escape(text)}</td>"
            f"<td>{html.escape(EXPLAIN.get(key, ''))}</td></tr>"
        )
    versions = html.escape(json.dumps(summary.get("versions", {})))
    return (
        "<h2>Summary (test split)</h2><table><tr><th>key</th><th>value</th><th>meaning</th></tr>"
        + "".join(rows)
        + f"</table><p class='small'>versions: {versions}</p>"
    )


EXPLORER_NOTE = re.compile(r'<p class="small" id="vk-explorer">.*?</p>', re.DOTALL)


def explorer_note(out: Path) -> str:
    """The report's line about `vaekit explore`: a link to OUT/explorer.html where it exists, else
    the command that writes it (a report never links a page that is not there)."""
    command = f"<code>vaekit explore {html.escape(str(out))}</code>"
    if (Path(out) / "explorer.html").exists():
        said = (
            '<a href="explorer.html">explorer.html</a> (hover an example, move over the decoded plane, '
            f"click for neighbours; written by {command}, offline)"
        )
    else:
        said = (
            f"{command} writes explorer.html here: hover an example, move over the decoded plane, click "
            "for neighbours"
        )
    return f'<p class="small" id="vk-explorer">Interactive: {said}.</p>'


def link_explorer(out: Path) -> None:
    """Point OUT/report.html (where it exists) at the explorer page just written beside it."""
    page = Path(out) / "report.html"
    if page.exists():
        text = page.read_text(encoding="utf-8")
        io.write_text(page, EXPLORER_NOTE.sub(lambda _: explorer_note(out), text, count=1))


def figures_html(pngs: list[Path], style: str = "") -> str:
    """Each PNG as an HTML figure with the image embedded (base64) and captioned by its file
    name; `style` for the figure element (e.g. side by side in a notebook)."""
    parts = []
    for p in pngs:
        data = base64.b64encode(Path(p).read_bytes()).decode("ascii")
        name = html.escape(p.stem)
        parts.append(
            f"<figure style='{style}'><img src='data:image/png;base64,{data}' alt='{name}' "
            f"style='max-width:100%'><figcaption>{name.replace('_', ' ')}</figcaption></figure>"
        )
    return "".join(parts)


class _Displayed:
    """Jupyter's display of an output: `body(self)` (its report's HTML) and the figures in its
    folder `out`, side by side."""

    def __init__(self, content, out: Path, body):
        super().__init__(content)
        self.out = Path(out)
        self._body = body

    def _repr_html_(self) -> str:
        return self._body(self) + figures_html(sorted_pngs(self.out), NOTEBOOK_FIGURE)


class DisplayedResult(_Displayed, dict):
    """An output's JSON (a dict, as written) shown as its report: what `vaekit.analyses.anomaly`
    returns."""


class DisplayedRows(_Displayed, list):
    """Rows (a list of dicts) shown as their table and the output's figures: what
    `vaekit.sweep.run` returns."""


NOTEBOOK_FIGURE = "display:inline-block;width:48%;margin:0 1% 1em 0"


def write_html(out: Path, title: str, body: str, pngs: list[Path], explorable: bool = False) -> None:
    """Write `out/report.html` atomically: a self-contained page with `title` (escaped), `body`
    (HTML, inserted as is: escape user text first) and each PNG embedded as base64, captioned
    by its file name. `explorable`: the folder is one `vaekit explore` reads (a VAE's run, a
    sweep, an anomaly output), and the page says so (`explorer_note`)."""
    images = [figures_html([p]) for p in pngs]
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}
img{{max-width:100%}}figure{{margin:1.5em 0}}.small{{font-size:80%;color:#666}}</style></head>
<body><h1>{html.escape(title)}</h1>
{explorer_note(out) if explorable else ""}
{body}
{"".join(images)}
</body></html>
"""
    io.write_text(out / "report.html", page)
