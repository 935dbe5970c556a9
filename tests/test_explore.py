"""`vaekit explore` in a real headless browser: Debian's chromium driven by Playwright (its own
browser download is not used). The page loads from a file:// URL and makes no other request;
hovering a known point shows that example (the nearest under the pointer, in a panel); moving
over the plane changes the decoded view; the beta slider moves the points; a label holding
markup shows as text. A screenshot of each page is written beside the test's files (and under
$VAEKIT_TEST_ARTIFACTS when set)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import FAST

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
sync_api = pytest.importorskip("playwright.sync_api", reason="the test extras install playwright")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on this machine (apt-get install chromium)"
)

SIZE_LIMIT = 6_000_000  # bytes of the digits page (bokeh's inline JavaScript is about 1.5 MB of it)

LOCATE = """([name, i]) => {
  const doc = Bokeh.documents[0];
  const plot = doc.get_model_by_name(name);
  const source = plot.renderers[0].data_source;
  let view = null;
  const stack = [...Bokeh.index.roots ?? Object.values(Bokeh.index)];
  while (stack.length) {
    const v = stack.pop();
    if (v.model === plot) { view = v; break; }
    for (const c of v.child_views ?? []) stack.push(c);
  }
  const rect = view.canvas_view.el.getBoundingClientRect();
  const x = source.data.x[i], y = source.data.y[i];
  return [rect.left + view.frame.x_scale.compute(x), rect.top + view.frame.y_scale.compute(y),
          source.data.content[i], source.data.label[i]];
}"""


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def _open(browser, page_file: Path, shot: Path):
    """The page opened from disk; every request that is not file: is recorded and refused."""
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    outside, errors = [], []
    page.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith("file:")
            else (outside.append(route.request.url), route.abort())[-1]
        ),
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(page_file.as_uri())
    page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0 && Bokeh.index")
    page.wait_for_timeout(300)
    _shot(page, shot)
    return page, outside, errors


def _shot(page, path: Path) -> None:
    """A screenshot beside the test's files, copied under $VAEKIT_TEST_ARTIFACTS when set."""
    page.screenshot(path=str(path))
    artifacts = os.environ.get("VAEKIT_TEST_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(artifacts) / path.name)


def _explored(cli, browser, tmp_path, name: str, train: list, explore: tuple = ()):
    """Train a run on `train` (the data and settings), write its page with `explore`'s options
    and open it: (page, requests made outside file:, page and console errors)."""
    run = tmp_path / name
    code, _, err = cli("train", *train, "--latent-dim", "2", "--out", run, *FAST)
    assert code == 0, err
    code, _, err = cli("explore", run, *explore, "--out", tmp_path / f"{name}.html")
    assert code == 0, err
    return _open(browser, tmp_path / f"{name}.html", tmp_path / f"{name}.png")


def _hover(page, index: int):
    x, y, content, label = page.evaluate(LOCATE, ["scatter", index])
    page.mouse.move(x, y)
    page.wait_for_timeout(250)
    return content, label


def _vaekit(*args) -> tuple[int, str]:
    """`vaekit ARGS` in-process for a module-scoped fixture: (exit status, stdout + stderr)."""
    import contextlib
    import io

    from vaekit.cli import main

    said = io.StringIO()
    with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return code, said.getvalue()


@pytest.fixture(scope="module")
def digits_page(tmp_path_factory):
    root = tmp_path_factory.mktemp("explore")
    run = root / "run"
    code, said = _vaekit(
        "train", "--data", "digits", "--latent-dim", "3", "--epochs", "2", "--out", run, *FAST
    )
    assert code == 0, said
    code, said = _vaekit("explore", run, "--out", root / "digits.html")
    assert code == 0, said
    return root / "digits.html", said


def test_the_page_is_offline_and_hover_shows_the_example(digits_page, browser, tmp_path):
    page_file, said = digits_page
    size = page_file.stat().st_size
    assert size < SIZE_LIMIT and f"wrote {page_file} ({size / 1e6:.1f} MB" in said
    page, outside, errors = _open(browser, page_file, tmp_path / "digits.png")
    for index in (0, 17):
        content, label = _hover(page, index)
        panel = page.locator(".vk-hover")
        panel.wait_for(state="visible", timeout=3000)
        assert panel.locator("img").get_attribute("src") == content and label in panel.inner_text()
    page.mouse.down()  # a click: the neighbours appear
    page.mouse.up()
    page.wait_for_timeout(250)
    _shot(page, tmp_path / "digits-hover.png")
    assert "nearest neighbours" in page.locator("text=nearest neighbours").first.inner_text()
    assert outside == [] and errors == []


def test_moving_over_the_plane_changes_the_decoded_view(digits_page, browser, tmp_path):
    page, _, errors = _open(browser, digits_page[0], tmp_path / "decoded.png")
    x0, y0, *_ = page.evaluate(LOCATE, ["scatter", 0])
    seen = []
    for dx in (-150, 150):
        page.mouse.move(x0 + dx, y0)
        page.wait_for_timeout(200)
        seen.append(page.locator("img.vk-decoded").get_attribute("src"))
    assert seen[0] and seen[1] and seen[0] != seen[1] and errors == []


def test_the_beta_slider_moves_the_points(cli, browser, tmp_path):
    train = ["--data", "digits", "--beta-range", "0.1", "10", "--epochs", "2"]
    page, outside, errors = _explored(cli, browser, tmp_path, "cond", train)
    before = page.evaluate(
        "() => Bokeh.documents[0].get_model_by_name('scatter').renderers[0].data_source.data.x.slice(0, 5)"
    )
    page.evaluate("() => { Bokeh.documents[0].get_model_by_name('beta').value = 0; }")
    page.wait_for_timeout(200)
    after = page.evaluate(
        "() => Bokeh.documents[0].get_model_by_name('scatter').renderers[0].data_source.data.x.slice(0, 5)"
    )
    assert not np.allclose(before, after)
    title = page.evaluate("() => Bokeh.documents[0].get_model_by_name('beta').title")
    plot_title = page.evaluate("() => Bokeh.documents[0].get_model_by_name('scatter').title.text")
    assert title.startswith("beta = 0.1 ") and plot_title.endswith("beta = 0.1")
    assert outside == [] and errors == []


def test_a_table_row_shows_its_values_and_markup_stays_text(cli, browser, tmp_path):
    gen = np.random.default_rng(0)
    n = 120
    frame = pd.DataFrame(
        {
            "event": [f"ev{i:04d}" for i in range(n)],
            "energy": gen.gamma(2.0, 3.0, n).round(3),
            "hits": gen.poisson(4, n),
            "kind": np.where(np.arange(n) % 2 == 0, "<script>window.pwned=1</script>", "plain"),
        }
    )
    frame.to_csv(tmp_path / "t.csv", index=False)
    train = ["--data", tmp_path / "t.csv", "--label-column", "kind", "--id-column", "event", "--epochs", "2"]
    page, outside, errors = _explored(cli, browser, tmp_path, "table", train)
    index = next(i for i in range(40) if "script" in page.evaluate(LOCATE, ["scatter", i])[3])
    _hover(page, index)
    page.locator(".vk-hover").wait_for(state="visible", timeout=3000)
    text = page.locator(".vk-hover").inner_text()
    assert "<script>window.pwned=1</script>" in text and "energy" in text and "event" in text
    assert page.evaluate("() => window.pwned") is None and outside == [] and errors == []


def _events(tmp_path: Path) -> None:
    """bkg.csv (300 events), sig.csv (30 events of a larger pt) and both.csv (all, with a
    `process` column: qcd or bsm), each with an `event_id`."""
    gen = np.random.default_rng(1)
    n = 300
    background = pd.DataFrame(
        {
            "event_id": [f"b{i:04d}" for i in range(n)],
            "pt": gen.gamma(3.0, 10.0, n).round(3),
            "eta": gen.normal(0, 1, n).round(3),
        }
    )
    signal = pd.DataFrame(
        {
            "event_id": [f"s{i:03d}" for i in range(30)],
            "pt": gen.gamma(30.0, 10.0, 30).round(3),
            "eta": gen.normal(0, 1, 30).round(3),
        }
    )
    background.to_csv(tmp_path / "bkg.csv", index=False)
    signal.to_csv(tmp_path / "sig.csv", index=False)
    both = pd.concat([background.assign(process="qcd"), signal.assign(process="bsm")])
    both.to_csv(tmp_path / "both.csv", index=False)


def _background_run(cli, tmp_path: Path, epochs: int, latent_dim: int) -> Path:
    """`_events`' files written and a run trained on bkg.csv (tmp_path/run)."""
    _events(tmp_path)
    run = tmp_path / "run"
    code, _, err = cli(
        "train",
        "--data",
        tmp_path / "bkg.csv",
        "--epochs",
        epochs,
        "--latent-dim",
        latent_dim,
        "--out",
        run,
        *FAST,
    )
    assert code == 0, err
    return run


def _data(page, name: str = "scatter") -> dict:
    """The scatter's data source as Python lists."""
    return page.evaluate(
        f"() => {{ const d = Bokeh.documents[0].get_model_by_name('{name}').renderers[0].data_source.data;"
        " const o = {}; for (const k of Object.keys(d)) { o[k] = Array.from(d[k]); } return o; }"
    )


def test_the_anomaly_view_lists_the_events_above_the_cut(cli, browser, tmp_path):
    """Background (the run's test split) and a signal file in one scatter: moving the -ELBO cut
    lists the examples above it with their identifiers and the share of each group."""
    _events(tmp_path)
    train = ["--data", tmp_path / "bkg.csv", "--epochs", "5"]
    page, outside, errors = _explored(
        cli, browser, tmp_path, "anomaly", train, ("--signal", tmp_path / "sig.csv")
    )
    opened = page.evaluate("() => Bokeh.documents[0].get_model_by_name('above').text")
    assert "examples above the cut" in opened  # the starting cut is applied as the page opens
    low = page.evaluate(
        "() => { const c = Bokeh.documents[0].get_model_by_name('cut'); c.value = c.start; return c.start; }"
    )
    page.wait_for_timeout(200)
    listed = page.evaluate("() => Bokeh.documents[0].get_model_by_name('above').text")
    assert "of 30 signal" in listed and "s0" in listed and "b0" in listed
    page.evaluate("() => { const c = Bokeh.documents[0].get_model_by_name('cut'); c.value = c.end - 1e-9; }")
    page.wait_for_timeout(200)
    listed = page.evaluate("() => Bokeh.documents[0].get_model_by_name('above').text")
    assert listed.startswith("<div><b>1</b> examples above the cut") and low < 1e9
    _shot(page, tmp_path / "anomaly-cut.png")
    assert outside == [] and errors == []


def test_traversals_name_the_factor_each_dimension_captures(tmp_path):
    """A run on data with ground-truth factors: the page's traversals name, per dimension, the
    factor it shares the most mutual information with, and the factors colour the scatter."""
    gen = np.random.default_rng(2)
    size = gen.integers(0, 4, 200)
    x = np.zeros((200, 8, 8), np.uint8)
    for i, s in enumerate(size):
        x[i, : 2 + s, : 2 + s] = 255
    np.savez(tmp_path / "f.npz", x=x, factors=np.c_[size, gen.integers(0, 2, 200)])
    code, said = _vaekit(
        "train",
        "--data",
        tmp_path / "f.npz",
        "--latent-dim",
        "2",
        "--epochs",
        "3",
        "--out",
        tmp_path / "run",
        *FAST,
    )
    assert code == 0, said
    code, said = _vaekit("explore", tmp_path / "run")
    assert code == 0, said
    page = (tmp_path / "run" / "explorer.html").read_text()
    assert "most informative of factor_0" in page or "most informative of factor_1" in page
    assert "factor: factor_0" in page and "Traversals (largest average KL first" in page


def test_bad_explore_input_is_one_sentence(cli, digits_page, tmp_path):
    run = digits_page[0].parent / "run"
    for args, said in [
        ([tmp_path / "nothing"], "does not exist"),
        ([run, "--dims", "0", "2"], "in 1..3 (z1 is 1), not 0 2"),
        ([run, "--out", tmp_path / "x.png"], "--out must end in .html"),
        ([run, "--max-points", "1"], "--max-points must be at least 2"),
    ]:
        code, _, err = cli("explore", *map(str, args))
        lines = [line for line in err.strip().splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and said in lines[0], err
    code, _, err = cli("explore", run, "--dims", "3", "1", "--out", tmp_path / "deep" / "er" / "p.html")
    assert code == 0 and (tmp_path / "deep" / "er" / "p.html").exists(), err


def test_an_anomaly_output_opens_as_its_anomaly_view(cli, browser, tmp_path):
    """`vaekit explore RUN/anomaly` shows the run with that output's background and signal, writes
    RUN/anomaly/explorer.html, and the anomaly report then links it (before, it gave the command);
    a second explore does not overwrite the page without --overwrite; an output that names its
    own files refuses --data."""
    run = _background_run(cli, tmp_path, epochs=5, latent_dim=2)
    code, _, err = cli("anomaly", run, "--background", tmp_path / "bkg.csv", "--signal", tmp_path / "sig.csv")
    assert code == 0, err
    report = (run / "anomaly" / "report.html").read_text()
    assert f"vaekit explore {run / 'anomaly'}" in report and 'href="explorer.html"' not in report
    code, out, err = cli("explore", run / "anomaly")
    assert code == 0 and f"wrote {run / 'anomaly' / 'explorer.html'}" in out, err
    assert 'href="explorer.html"' in (run / "anomaly" / "report.html").read_text()
    before = (run / "anomaly" / "explorer.html").read_bytes()
    for args, said in [
        (
            [run / "anomaly"],
            "explorer.html already exists; choose another --out, or replace it with --overwrite",
        ),
        (
            [run / "anomaly", "--data", tmp_path / "bkg.csv", "--overwrite"],
            "This output names its own run and files",
        ),
    ]:
        code, _, err = cli("explore", *args)
        lines = [line for line in err.strip().splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and said in lines[0], err
    assert (run / "anomaly" / "explorer.html").read_bytes() == before
    page, outside, errors = _open(browser, run / "anomaly" / "explorer.html", tmp_path / "anomaly-output.png")
    listed = page.evaluate("() => Bokeh.documents[0].get_model_by_name('above').text")
    assert "of 30 signal" in listed and "of 60 background" in listed  # the run's test split: 20 %
    data = _data(page)
    assert sum(label.startswith("signal: sig.csv") for label in data["label"]) == 30
    assert outside == [] and errors == []


def test_one_file_anomaly_output_in_the_plane_of_principal_components(cli, browser, tmp_path):
    """An anomaly output of one file told apart by a label column (--data --label-column
    --signal-label) marks its signal rows by that label; --pca shows the plane of the posterior
    means' first two principal components (of the background rows): the first has the largest
    variance of any direction, the two are uncorrelated. A click outlines the query and its k
    nearest neighbours in the full latent space."""
    run = _background_run(cli, tmp_path, epochs=4, latent_dim=3)
    both = tmp_path / "both.csv"
    code, _, err = cli(
        "anomaly",
        run,
        "--data",
        both,
        "--label-column",
        "process",
        "--signal-label",
        "bsm",
        "--out",
        tmp_path / "an",
    )
    assert code == 0, err
    code, _, err = cli("explore", tmp_path / "an", "--pca")
    assert code == 0, err
    page, outside, errors = _open(browser, tmp_path / "an" / "explorer.html", tmp_path / "pca.png")
    listed = page.evaluate("() => Bokeh.documents[0].get_model_by_name('above').text")
    assert "of 30 signal" in listed and "of 300 background" in listed
    label = page.evaluate("() => Bokeh.documents[0].get_model_by_name('scatter').below[0].axis_label")
    assert label.startswith("PC1 of the posterior means (")
    view = page.evaluate("() => Bokeh.documents[0].get_model_by_name('scatter').tags[0].views[0]")
    data = _data(page)
    codes = np.asarray(view["codes"])
    background = np.asarray(data["label"]) == "qcd"
    plane = np.c_[view["x"], view["y"]][background]
    centred = codes[background] - codes[background].mean(axis=0)
    assert plane[:, 0].var() >= centred.var(axis=0).max() - 1e-6  # PC1: the largest variance
    assert abs(np.corrcoef(plane[:, 0], plane[:, 1])[0, 1]) < 1e-3
    assert np.isclose(
        plane[:, 0].var() + plane[:, 1].var(),
        np.linalg.eigvalsh(np.cov(centred.T, ddof=0))[-2:].sum(),
        rtol=1e-3,
    )
    page.evaluate(
        "() => { const plot = Bokeh.documents[0].get_model_by_name('scatter');"
        " plot.renderers[0].data_source.selected.indices = [3]; }"
    )
    page.wait_for_timeout(300)
    line = np.asarray(_data(page)["line"])
    nearest = np.argsort(np.linalg.norm(codes - codes[3], axis=1), kind="stable")[1:9]
    assert list(np.flatnonzero(line == "#d62728")) == [3]
    assert set(np.flatnonzero(line == "#000000")) == set(nearest.tolist())
    _shot(page, tmp_path / "pca-neighbours.png")
    assert outside == [] and errors == []


def test_a_score_output_colours_the_examples_by_their_saved_scores(cli, browser, tmp_path):
    """`vaekit explore scores.csv` shows the scored file's examples with the scores vaekit score
    saved: a colouring each, with a colour bar, and the hovered row's saved values."""
    run = _background_run(cli, tmp_path, epochs=3, latent_dim=2)
    scores = tmp_path / "s.csv"
    code, _, err = cli("score", run, "--data", tmp_path / "sig.csv", "--samples", "3", "--out", scores)
    assert code == 0, err
    code, out, err = cli("explore", scores)
    assert code == 0 and "s-explorer.html" in out, err
    page, outside, errors = _open(browser, tmp_path / "s-explorer.html", tmp_path / "scores.png")
    options = page.evaluate("() => Bokeh.documents[0].get_model_by_name('colour').options")
    assert {"saved nll", "saved neg_elbo", "saved rate"} <= set(options)
    saved = pd.read_csv(scores)
    page.evaluate("() => { Bokeh.documents[0].get_model_by_name('colour').value = 'saved nll'; }")
    page.wait_for_timeout(200)
    legend = page.evaluate("() => Bokeh.documents[0].get_model_by_name('legend').text")
    low, high = np.percentile(saved["nll"], [2, 98])
    assert f"saved nll:</span><span>{low:.4g}</span>" in legend and f"<span>{high:.4g}</span>" in legend
    data = _data(page)
    order = np.argsort(saved["nll"].to_numpy())
    by_row = dict(zip(data["index"], data["colour"], strict=True))
    assert by_row[saved["event_id"][order[0]]] != by_row[saved["event_id"][order[-1]]]
    _hover(page, 5)
    text = page.locator(".vk-hover").inner_text()
    row = saved[saved["event_id"] == data["index"][5]].iloc[0]
    assert f"nll {row['nll']:.4g}" in text and f"rate {row['rate']:.4g}" in text
    assert outside == [] and errors == []


def test_reports_give_the_explore_command_where_it_applies(cli, tmp_path):
    """A VAE's run report gives the command that writes its explorer page (no link to a page that
    is not there) and links the page once `vaekit explore RUN` wrote it; an autoencoder's report
    does not mention it."""
    x = np.random.default_rng(0).normal(size=(200, 5)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    for kind in ("vae", "ae"):
        code, _, err = cli(
            "train",
            "--data",
            tmp_path / "x.npy",
            "--model",
            kind,
            "--epochs",
            "1",
            "--out",
            tmp_path / kind,
            *FAST,
        )
        assert code == 0, err
    assert "vaekit explore" not in (tmp_path / "ae" / "report.html").read_text()
    report = (tmp_path / "vae" / "report.html").read_text()
    assert f"<code>vaekit explore {tmp_path / 'vae'}</code> writes explorer.html here" in report
    assert 'href="explorer.html"' not in report
    code, _, err = cli("explore", tmp_path / "vae")
    assert code == 0, err
    assert 'href="explorer.html"' in (tmp_path / "vae" / "report.html").read_text()
