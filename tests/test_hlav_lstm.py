"""H2 (orthojac.thesis.lstm, orthojac.thesis.sentiment): the LSTM's configurations and regulariser forms,
training end to end on the generated stand-in, and the data-unavailable path."""

import json
import subprocess
import sys

import pandas as pd
import pytest
import torch
import yaml

from conftest import REPO, fixture_config, make_idx_dataset
from orthojac.data import downloads
from orthojac.thesis import figures, lstm, sentiment
from orthojac.files import DataError
from orthojac.report.check import PNG_SIGNATURE

torch.set_num_threads(1)
TABLE = torch.randn(5, 6)


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stand_in")
    sentiment.write_stand_in(folder, sentences=400, dim=12, seed=0)
    return folder


@pytest.mark.parametrize("configuration, gain", [("Orthogonal_NoReg", 1.0), ("Orthogonal_GainA_NoReg", 1.1),
                                                 ("Orthogonal_GainA_RegB", 1.1)])
def test_orthogonal_recurrent_kernel_starts_at_its_gain(configuration, gain):
    w = lstm.build(configuration, 1.1, TABLE, 8, seed=0).recurrent.detach().double()
    assert w.shape == (32, 8)  # the four gates' kernels stacked: Keras' (n, 4n) recurrent_kernel, transposed
    sv = torch.linalg.svdvals(w)
    assert torch.allclose(sv, torch.full_like(sv, gain), atol=1e-5)


def test_glorot_kernel_and_keras_biases():
    model = lstm.build("NoOrthogonal", 1.1, TABLE, 16, seed=0)
    sv = torch.linalg.svdvals(model.recurrent.detach())
    assert sv.max() - sv.min() > 0.5
    assert model.lstm.bias_ih_l0[16:32].eq(1).all() and model.lstm.bias_ih_l0[:16].eq(0).all()
    assert not model.embed.weight.requires_grad


def test_penalty_forms_on_the_rectangular_kernel():
    model = lstm.build("Orthogonal_GainA_adj_RegB", 1.1, TABLE, 8, seed=0)
    base = {"gain": 1.1, "lam": 0.5}
    adj = lstm.penalty(model, base | {"configuration": "Orthogonal_GainA_adj_RegB", "variant": "eq11"})
    unadj = lstm.penalty(model, base | {"configuration": "Orthogonal_GainA_RegB", "variant": "eq11"})
    listing = lstm.penalty(model, base | {"configuration": "Orthogonal_GainA_adj_RegB", "variant": "listing"})
    assert adj.item() == pytest.approx(0.0, abs=1e-8)  # WᵀW/g² = I_n at W = g·Q
    assert unadj.item() == pytest.approx(0.5 * 8 * (1.1 ** 2 - 1) ** 2, rel=1e-4)
    # the listing: P = WWᵀ/g² (32 × 32, Keras' KᵀK) is a rank-8 projector: ‖P‖²_F = 8, so
    # mean((P − 1)²) = (32² − 2·1ᵀP1 + 8) / 32²
    w = model.recurrent.detach().double()
    ones = torch.ones(32, dtype=torch.float64)
    p_sum = (ones @ (w @ w.T / 1.1 ** 2) @ ones).item()
    assert listing.item() == pytest.approx(0.5 * (32 ** 2 - 2 * p_sum + 8) / 32 ** 2, rel=1e-4)
    assert lstm.penalty(model, base | {"configuration": "Orthogonal_NoReg", "variant": "none"}) is None


def test_encoding_pads_and_truncates_at_the_front():
    vectors = {"a": torch.ones(3).numpy(), "b": (2 * torch.ones(3)).numpy()}
    tokens, table = sentiment.encode([["a", "zzz", "b"], ["b", "a", "a", "b", "a"]], vectors, 3, 4)
    assert tokens.tolist() == [[0, 1, 0, 2], [1, 1, 2, 1]]
    assert table[0].eq(0).all() and table[2].eq(2).all()


def test_train_on_the_stand_in_end_to_end(stand_in, tmp_path):
    out = tmp_path / "seed=0.csv"
    lstm.main(["train", "--text", str(stand_in / "text/status.json"), "--embeddings",
                    str(stand_in / "embeddings/status.json"), "--epochs", "3", "--hidden", "8",
                    "--batch-size", "32", "--train-size", "240", "--val-size", "80", "--test-size", "80",
                    "--lambdas", "0.01", "--variants", "eq11", "--lr", "0.02", "--threads", "1", "--out", str(out)])
    table = pd.read_csv(out)
    assert list(table.columns) == lstm.COLUMNS
    assert set(table["status"]) == {lstm.STAND_IN} and table["label"].nunique() == 5
    assert sorted(table[table["metric"] == "sv_mean"]["epoch"].unique()) == [0, 1, 2, 3]
    val = table[table["metric"] == "val_accuracy"].pivot_table(index="label", columns="epoch", values="value")
    assert (val[3] > 0.7).all()  # the stand-in's polarity words are learnable
    combined = tmp_path / "h2.csv"
    lstm.main(["collect", str(out), str(out), "--out", str(combined)])
    assert len(pd.read_csv(combined)) == 2 * len(table)
    figures.main(["hlav_lstm", "--table", str(combined), "--out-dir", str(tmp_path / "figures")])
    assert (tmp_path / "figures/hlav_lstm_spectrum.png").read_bytes().startswith(PNG_SIGNATURE)


def test_unavailable_data_gives_a_table_that_says_so(tmp_path):
    receipt = downloads.fetch("glove.6B.zip", "glove_6b", None, None, [], [tmp_path / "none"], tmp_path / "g",
                              optional=True)
    assert receipt["status"] == "unavailable"
    text = tmp_path / "text.json"
    text.write_text(json.dumps({"status": "verified", "file": "missing.tar.gz"}))
    out = tmp_path / "seed=1.csv"
    lstm.main(["train", "--text", str(text), "--embeddings", str(tmp_path / "g/status.json"),
                    "--seed", "1", "--out", str(out)])
    table = pd.read_csv(out)
    assert table["status"].tolist() == [lstm.UNAVAILABLE] and table["seed"].tolist() == [1]
    assert str(tmp_path / "none" / "glove.6B.zip") in table["note"][0]
    assert "downloads.glove_6b.mirrors" in table["note"][0]
    lstm.main(["collect", str(out), "--out", str(tmp_path / "h2.csv")])
    figures.main(["hlav_lstm", "--table", str(tmp_path / "h2.csv"), "--out-dir", str(tmp_path / "figures")])
    assert (tmp_path / "figures/hlav_lstm_accuracy.png").read_bytes().startswith(PNG_SIGNATURE)


def test_bad_inputs_name_the_file_or_flag(stand_in, tmp_path):
    with pytest.raises(DataError, match="not a data receipt"):
        sentiment.read_receipt(stand_in / "text" / sentiment.TEXT_FILE)
    with pytest.raises(DataError, match="fewer than train"):
        sentiment.load(stand_in / "text" / sentiment.TEXT_FILE, stand_in / "embeddings" / sentiment.EMBEDDINGS_FILE,
                       sentiment.EMBEDDINGS_MEMBER, 50, (4264, 533, 533), 0)
    with pytest.raises(DataError, match="no member 'glove.840B.300d.txt'"):
        sentiment.read_vectors(stand_in / "embeddings" / sentiment.EMBEDDINGS_FILE, "glove.840B.300d.txt", set())
    with pytest.raises(SystemExit, match="no_receipt.json"):
        lstm.main(["train", "--text", str(tmp_path / "no_receipt.json"), "--embeddings", "y",
                        "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit, match="--lambdas"):
        lstm.main(["train", "--text", "x", "--embeddings", "y", "--lambdas", "0", "--out", str(tmp_path / "o")])


def test_report_says_h2_data_unavailable_and_renders_the_rest(tiny_pipeline):
    text = (tiny_pipeline / "results/report/hlav.html").read_text()
    assert "H2: data unavailable." in text and "nonexistent.invalid/glove.6B.zip" in text
    assert "downloads.vectors.mirrors" in text and "Orthogonal_Gain1.1_adj_Reg0.01" in text
    ledger = pd.read_csv(tiny_pipeline / "results/report/ledger.csv").set_index("claim")
    assert ledger.loc["H-C4", "verdict"] == "inconclusive"
    assert ledger.loc["H-C4", "numbers"].startswith("H2 data unavailable")
    provenance = pd.read_csv(tiny_pipeline / "results/report/hlav.provenance.csv")
    assert {"hlav_rnn", "hlav_lstm", "downloads"} <= set(provenance["experiment"])


def test_h2_section_states_this_configurations_sizes_not_the_thesis_split(tiny_pipeline):
    """The sizes come from the config with their provenance (the tiny one: 20/10/10, `choice`)."""
    text = (tiny_pipeline / "results/report/hlav.html").read_text()
    assert "training, validation and test sentences 20 (" in text and "4264/533/533" not in text


def test_required_data_fails_the_workflow_naming_the_sources(tmp_path, venv_env):
    """`hlav_lstm.data: required`: the fetch rule fails as every other data rule does."""
    # a valid image data set (the schema wants its four IDX files), never fetched: only H2's rule runs
    config = fixture_config(tmp_path / "mirror", make_idx_dataset(tmp_path / "mirror"))
    config["hlav_lstm"]["data"]["value"] = "required"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
                           "--configfile", "config.yaml", "--cores", "1", "results/data/vectors/status.json"],
                          cwd=tmp_path, env=venv_env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    log = (tmp_path / "results/logs/fetch_download/vectors.log").read_text()
    assert "nonexistent.invalid/glove.6B.zip" in log and "no_such_folder/glove.6B.zip: not found" in log
    assert not (tmp_path / "results/data/vectors/status.json").exists()
