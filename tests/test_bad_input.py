"""Bad input: exit status 2, one clear sentence, no traceback, nothing the user had is lost."""

import numpy as np
import pytest
from conftest import FAST


def _fails_clearly(result, *fragments):
    code, out, err = result
    assert code == 2, (code, out, err)
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def _train(cli, tmp_path, *args):
    return cli("train", "--epochs", "1", "--out", tmp_path / "run", *FAST, *args)


def test_missing_file(cli, tmp_path):
    _fails_clearly(_train(cli, tmp_path, "--data", tmp_path / "nope.npy"), "No file or folder at")
    assert not (tmp_path / "run").exists()


def test_unknown_data_set(cli, tmp_path):
    _fails_clearly(_train(cli, tmp_path, "--data", "cifar99"), "Unknown data set 'cifar99'", "digits")


def test_empty_file(cli, tmp_path):
    (tmp_path / "e.csv").write_text("")
    _fails_clearly(_train(cli, tmp_path, "--data", tmp_path / "e.csv"), "is empty (0 bytes)")


def test_nan_values_say_how_many_and_where(cli, tmp_path):
    x = np.random.default_rng(0).normal(size=(50, 4))
    x[7, 2] = np.nan
    x[9, 0] = np.nan
    np.save(tmp_path / "x.npy", x)
    _fails_clearly(_train(cli, tmp_path, "--data", tmp_path / "x.npy"), "2 NaN values", "example 7")


def test_inf_values(cli, tmp_path):
    x = np.ones((20, 3))
    x[2, 1] = np.inf
    np.save(tmp_path / "x.npy", x)
    _fails_clearly(_train(cli, tmp_path, "--data", tmp_path / "x.npy"), "1 Inf value")


def test_ragged_csv(cli, tmp_path):
    (tmp_path / "r.csv").write_text("a,b\n1,2\n3\n")
    _fails_clearly(
        _train(cli, tmp_path, "--data", tmp_path / "r.csv"), "line 3 has 1 fields but the header has 2"
    )


def test_csv_text_cell_and_header_only_and_label_column(cli, tmp_path):
    (tmp_path / "t.csv").write_text("a,b\n1,2\n3,x\n")
    _fails_clearly(_train(cli, tmp_path, "--data", tmp_path / "t.csv"), "'b' (numbers, but holds 'x')")
    (tmp_path / "h.csv").write_text("a,b\n")
    _fails_clearly(_train(cli, tmp_path, "--data", tmp_path / "h.csv"), "header but no data rows")
    (tmp_path / "l.csv").write_text("a,b\n1,2\n3,4\n")
    _fails_clearly(
        _train(cli, tmp_path, "--data", tmp_path / "l.csv", "--label-column", "y"), "no column named 'y'"
    )


def test_negative_and_non_numeric_beta(cli, tmp_path):
    _fails_clearly(
        _train(cli, tmp_path, "--data", "digits", "--beta", "-0.5"), "beta must be a number of at least 0"
    )
    _fails_clearly(_train(cli, tmp_path, "--data", "digits", "--beta", "lots"), "'lots' is not a valid float")


def test_unknown_likelihood_model_and_option(cli, tmp_path):
    _fails_clearly(_train(cli, tmp_path, "--data", "digits", "--likelihood", "poisson"), "Unknown likelihood")
    _fails_clearly(
        _train(cli, tmp_path, "--data", "digits", "--model", "gan"), "model must be one of vae, ae"
    )
    _fails_clearly(_train(cli, tmp_path, "--data", "digits", "--betta", "2"), "No such option '--betta'")


def test_bernoulli_on_data_outside_unit_interval(cli, tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(40, 3)))
    _fails_clearly(
        _train(cli, tmp_path, "--data", tmp_path / "x.npy", "--likelihood", "bernoulli"),
        "needs data in [0, 1]",
    )


def test_latent_dim_and_test_size(cli, tmp_path):
    _fails_clearly(_train(cli, tmp_path, "--data", "digits", "--latent-dim", "0"), "latent_dim must be")
    _fails_clearly(_train(cli, tmp_path, "--data", "digits", "--test-size", "5000"), "5000 test examples")
    np.save(tmp_path / "one.npy", np.ones((1, 3)))
    _fails_clearly(_train(cli, tmp_path, "--data", tmp_path / "one.npy"), "has 1 example")


def test_config_unknown_key_and_wrong_type(cli, tmp_path):
    (tmp_path / "c.yaml").write_text("latent_dims: 3\n")
    code, _, err = cli("train", "--config", tmp_path / "c.yaml")
    _fails_clearly(
        (code, _, err), "unknown key 'latent_dims'; did you mean 'latent_dim'?", "vaekit train --help"
    )
    assert len(err) < 300  # one sentence, not the list of every key
    (tmp_path / "c.yaml").write_text("nl_samples: 3\n")
    _fails_clearly(cli("train", "--config", tmp_path / "c.yaml"), "did you mean 'nll_samples'?")
    (tmp_path / "c.yaml").write_text("zzzz: 3\n")
    code, _, err = cli("train", "--config", tmp_path / "c.yaml")
    _fails_clearly((code, _, err), "unknown key 'zzzz'; a key is a training option")
    (tmp_path / "c.yaml").write_text("out: somewhere\n")
    _fails_clearly(
        cli("train", "--config", tmp_path / "c.yaml"), "'out' is a command-line flag, not a setting"
    )
    assert "did you mean" not in err
    (tmp_path / "d.yaml").write_text("beta: [1, 2]\n")
    _fails_clearly(cli("train", "--config", tmp_path / "d.yaml"), "beta must be a number")


def test_existing_run_folder_is_not_overwritten(cli, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    _fails_clearly(_train(cli, tmp_path, "--data", "digits"), "already exists", "--overwrite")
    assert (run / "notes.txt").read_text() == "mine" and len(list(run.iterdir())) == 1


def test_existing_output_file_is_not_overwritten(cli, tmp_path):
    assert _train(cli, tmp_path, "--data", "digits")[0] == 0
    (tmp_path / "z.csv").write_text("precious")
    _fails_clearly(
        cli("encode", tmp_path / "run", "--data", "digits", "--out", tmp_path / "z.csv"), "already exists"
    )
    assert (tmp_path / "z.csv").read_text() == "precious"


def test_corrupt_run_folders(cli, tmp_path):
    assert _train(cli, tmp_path, "--data", "digits")[0] == 0
    run = tmp_path / "run"
    weights = (run / "model.safetensors").read_bytes()
    (run / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    _fails_clearly(cli("evaluate", run), "not a readable safetensors file")
    (run / "model.safetensors").unlink()
    _fails_clearly(cli("evaluate", run), "model.safetensors is missing")
    config = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(config.replace("format_version: 1", "format_version: 99"))
    _fails_clearly(cli("evaluate", run), "newer vaekit")


@pytest.mark.parametrize("payload", ["pickle"])
def test_hostile_checkpoint_runs_no_code(cli, tmp_path, payload):
    import pickle

    assert _train(cli, tmp_path, "--data", "digits")[0] == 0
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (tmp_path / "run" / "checkpoint.pt").write_bytes(pickle.dumps(Evil()))
    _fails_clearly(
        cli("train", "--resume", tmp_path / "run", "--epochs", "2", "--quiet"), "cannot be loaded safely"
    )
    assert not marker.exists()


def _png(path, height, width, value=128):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((height, width), value, dtype=np.uint8)).save(path)


def test_mixed_image_sizes(cli, tmp_path):
    _png(tmp_path / "imgs" / "a.png", 8, 8)
    _png(tmp_path / "imgs" / "b.png", 9, 8)
    _fails_clearly(_train(cli, tmp_path, "--data", tmp_path / "imgs"), "2 different sizes", "resize them")


def test_image_folder_with_labels_loads_and_trains(cli, tmp_path):
    import vaekit

    rng = np.random.default_rng(0)
    for label in ("cats", "dogs"):
        for i in range(6):
            _png(tmp_path / "imgs" / label / f"{i}.png", 8, 8, int(rng.integers(0, 255)))
    data = vaekit.datasets.load(tmp_path / "imgs", test_size=2)
    assert data.shape == (1, 8, 8) and data.is_image and data.label_names == ["cats", "dogs"]
    assert 0 <= data.x.min() and data.x.max() <= 1
    assert _train(cli, tmp_path, "--data", tmp_path / "imgs", "--test-size", "2")[0] == 0


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--beta-range", "1", "inf"], "beta_range must be two finite numbers 0 < low < high"),
        (["--beta-range", "4", "1"], "beta_range must be two finite numbers 0 < low < high"),
        (["--prior", "vamp", "--prior-weights", "uniform"], "--prior-weights applies to the mog prior"),
        (["--prior", "mog", "--prior-components", "0"], "must be a whole number of at least 1"),
        (["--condition", "classes"], "--condition must be one of none, labels"),
        (["--model", "ae", "--prior", "mog"], "A deterministic autoencoder has no prior"),
        (["--model", "ae", "--objective", "beta-elbo"], "deterministic autoencoder has no KL term"),
    ],
)
def test_new_model_options_fail_in_one_sentence(cli, tmp_path, args, fragment):
    _fails_clearly(_train(cli, tmp_path, "--data", "digits", *args), fragment)
    assert not (tmp_path / "run" / "model.safetensors").exists()


@pytest.mark.parametrize("text", ["5e3", "5.0e+3", "'5000'", "5000.0", "5_000"])
def test_config_whole_numbers_in_any_spelling(text, tmp_path):
    """YAML reads 5e3 as text and 5000.0 as a float; both are the whole number 5000."""
    from vaekit.cli import read_config_file

    (tmp_path / "c.yaml").write_text(f"nll_samples: {text}\nepochs: 2e0\n")
    assert read_config_file(tmp_path / "c.yaml") == {"nll_samples": 5000, "epochs": 2}


@pytest.mark.parametrize("text", ["5.5e0", "1e-1", "'five'", "true"])
def test_config_numbers_that_are_not_whole_are_refused(cli, text, tmp_path):
    (tmp_path / "c.yaml").write_text(f"nll_samples: {text}\n")
    _fails_clearly(cli("train", "--config", tmp_path / "c.yaml"), "nll_samples must be a whole number")
