"""H2 (Hlav §5, Figs. 9–10): a many-to-one LSTM sentiment classifier on GloVe vectors.

    python -m orthojac hlav-lstm train --text results/data/sentence_polarity/status.json \
        --embeddings results/data/glove_6b/status.json --seed 0 --out results/hlav/lstm/seed=0.csv
    python -m orthojac hlav-lstm collect results/hlav/lstm/seed=*.csv --out results/tables/hlav_lstm.csv

Stated (Hlav §5): GloVe 300-d vectors of every token, sequences padded to length 50, a many-to-one
LSTM with hidden size 128, binary cross-entropy, batch 128, tensors (4264 | 533 | 533, 50, 300),
the same five configurations as H1 (orthojac.thesis.rnn: CONFIGURATIONS, `runs`, both regulariser forms).
The data (orthojac.thesis.sentiment) and everything below are `choice`.

Model: h_t, c_t = LSTM(x_t, h_{t−1}, c_{t−1}) with gates i, f, g, o = σ/tanh(W_ih x_t + W_hh h_{t−1}
+ b); a linear read-out of h_50 gives the logit; the GloVe vectors are fixed inputs (the thesis
feeds (N, 50, 300) tensors).

Which kernel. The thesis' code is Keras, whose LSTM keeps the four gates' recurrent kernels in one
matrix, `recurrent_kernel` (128 × 512, `get_weights()[1]`: the matrix its singular-value callback
reads). orthojac applies the initialisation and the regulariser to that whole matrix, W = W_hh
(torch's layout, 4n × n = 512 × 128, the transpose of Keras'):
- orthogonal: W = g·Q with QᵀQ = I_n (orthonormal columns; Keras' `Orthogonal` on its (n, 4n)
  shape gives orthonormal rows, the same matrix transposed), so all n singular values are g;
- Glorot (`NoOrthogonal`): U(−a, a), a = √(6 / (n + 4n)) (Keras' glorot_uniform);
- eq. (11) for a non-square W: λ‖WᵀW/g² − I_n‖²_F (zero at g·Q; eq. (11) is written for a square W);
- the listing: λ·mean((WWᵀ/g² − 1)²) over the 4n × 4n entries, exactly `K.dot(K.transpose(Wk), Wk)`
  of Keras' Wk = Wᵀ.
Tracked: the n singular values of W (mean, std, min, max: Fig. 9) and the validation accuracy
(Fig. 10) per epoch (0 = at initialisation); the test accuracy after the last epoch. Other Keras
defaults: input kernel Glorot-uniform, biases 0 but the forget gate's 1 (`unit_forget_bias`),
read-out Glorot-uniform with bias 0; Adam.

Data unavailable: when a receipt says "unavailable" (orthojac.data.downloads --optional), `train` writes
one row per seed with status `data unavailable` and, in `note`, every source tried and how to
provide the files, instead of training. Rows of a generated stand-in carry status
`generated stand-in`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

from ..files import DataError, write_csv_atomic
from ..nets.orthogonal import orthogonal_matrix
from ..nets.regularisers import dense_defect, listing_defect
from . import STAND_IN, TRAINED, UNAVAILABLE, sentiment
from .settings import LSTM as Settings
from .common import fit, flag, glorot_uniform_, init_readout_and_recurrent_, section_main
from .rnn import COLUMNS as H1_COLUMNS
from .rnn import CONFIGURATIONS, VARIANTS, runs

COLUMNS = H1_COLUMNS + ["status", "note"]



class SentimentLSTM(nn.Module):
    """Fixed embedding table → one LSTM layer → linear read-out of the last hidden state (a logit)."""

    def __init__(self, table: torch.Tensor, hidden: int = 128):
        super().__init__()
        self.embed = nn.Embedding.from_pretrained(table, freeze=True, padding_idx=0)
        self.lstm = nn.LSTM(table.shape[1], hidden, batch_first=True)
        self.readout = nn.Linear(hidden, 1)

    @property
    def recurrent(self) -> torch.Tensor:
        """W = W_hh (4n × n): the four gates' recurrent kernels, Keras' `recurrent_kernel` transposed."""
        return self.lstm.weight_hh_l0

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.embed(tokens))
        return self.readout(out[:, -1]).squeeze(1)


def build(configuration: str, gain: float, table: torch.Tensor, hidden: int, seed: int) -> SentimentLSTM:
    """The LSTM of `configuration` (module docstring), initialised from `seed`."""
    if configuration not in CONFIGURATIONS:
        raise ValueError(f"unknown configuration {configuration!r}; have {list(CONFIGURATIONS)}")
    gen = torch.Generator().manual_seed(seed)
    model = SentimentLSTM(table, hidden)
    with torch.no_grad():
        glorot_uniform_(model.lstm.weight_ih_l0, gen)
        model.lstm.bias_ih_l0.zero_()
        model.lstm.bias_ih_l0[hidden:2 * hidden] = 1.0  # forget gate (torch's gate order i, f, g, o)
        model.lstm.bias_hh_l0.zero_()
        init_readout_and_recurrent_(model, configuration, gain, gen,
                                    lambda gen: orthogonal_matrix(4 * hidden, hidden, "haar", gen))
    return model


def penalty(model: SentimentLSTM, run: dict) -> torch.Tensor | None:
    """λ R(W, g) on the recurrent kernel (module docstring); g = the gain for `adj`, else 1."""
    if run["lam"] == 0.0 or run["variant"] == "none":
        return None
    if run["variant"] not in VARIANTS:
        raise ValueError(f"unknown regulariser form {run['variant']!r}; have {sorted(VARIANTS)}")
    g = run["gain"] if "_adj_" in run["configuration"] else 1.0
    w = model.recurrent
    defect = dense_defect(w.T, g) if run["variant"] == "eq11" else listing_defect(w, g)
    return run["lam"] * defect


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> float:
    """Share of sentences whose logit has the label's sign (logit > 0: positive)."""
    hits = sum(((model(x[i:i + batch]) > 0).float() == y[i:i + batch]).sum().item() for i in range(0, len(x), batch))
    return hits / len(x)


def train_one(run: dict, data: dict, seed: int, epochs: int, hidden: int, batch_size: int, lr: float,
              status: str = TRAINED) -> list[dict]:
    """Train one configuration with Adam on binary cross-entropy; its per-epoch tidy rows
    (orthojac.thesis.common.fit: a non-finite objective stops it with metric `diverged` = the epoch)."""
    torch.manual_seed(seed)
    model = build(run["configuration"], run["gain"], data["table"], hidden, seed)
    return fit(model, run, data, seed, epochs, batch_size, lr, nn.functional.binary_cross_entropy_with_logits,
               accuracy, penalty, extra={"status": status, "note": ""})


def unavailable_rows(receipts: list[dict], seed: int) -> list[dict]:
    """The one row that stands for a seed whose data could not be had: why, and how to fix it."""
    note = "\n".join(f"{r['file']}: sources tried:\n  " + "\n  ".join(r["tried"]) + f"\n{r['how_to']}"
                     for r in receipts if r["status"] == "unavailable")
    return [{"configuration": "", "label": "", "variant": "", "gain": float("nan"), "lam": float("nan"),
             "seed": seed, "train_size": 0, "epoch": 0, "metric": "data_unavailable", "value": float("nan"),
             "status": UNAVAILABLE, "note": note}]


def _train_main(args: argparse.Namespace) -> None:
    if min(args.epochs, args.hidden, args.batch_size, args.seq_len, args.train_size, args.val_size,
           args.test_size) < 1:
        raise SystemExit("--epochs, --hidden, --batch-size, --seq-len, --train-size, --val-size and "
                         "--test-size must be ≥ 1")
    if any(lam <= 0 for lam in args.lambdas):
        raise SystemExit(f"--lambdas must be > 0 (the unregularised configurations are always run), got {args.lambdas}")
    try:
        receipts = [sentiment.read_receipt(args.text), sentiment.read_receipt(args.embeddings)]
        dataset = args.text.parent.name  # results/data/DOWNLOAD/status.json: the text's download
        if any(r["status"] == "unavailable" for r in receipts):
            print("H2: DATA UNAVAILABLE, nothing trained; the table says so", file=sys.stderr)
            write_csv_atomic(args.out, [r | {"dataset": dataset} for r in unavailable_rows(receipts, args.seed)],
                             COLUMNS)
            return
        data = sentiment.load(receipts[0]["path"], receipts[1]["path"], args.embeddings_member, args.seq_len,
                              (args.train_size, args.val_size, args.test_size), args.corpus_seed)
    except DataError as err:
        raise SystemExit(f"orthojac hlav-lstm: {err}") from err
    status = STAND_IN if any(r["status"] == "generated" for r in receipts) else TRAINED
    print(f"H2 data ({status}): {data['table'].shape[0] - 1} words with a vector, "
          f"{data['coverage']:.1%} of tokens covered", file=sys.stderr)
    rows = []
    for run in runs(args.gain, args.lambdas, args.variants):
        rows += train_one(run, data, args.seed, args.epochs, args.hidden, args.batch_size, args.lr, status)
        print(f"{run['label']} ({run['variant']}): done", file=sys.stderr)
    write_csv_atomic(args.out, [r | {"dataset": dataset} for r in rows], COLUMNS)


def main(argv: list[str] | None = None) -> None:
    section_main(argv, Settings, _train_main, COLUMNS, prog="orthojac hlav-lstm", doc=__doc__,
                 train_help="train every configuration for one seed; write a tidy CSV",
                 out_help="tidy CSV of per-epoch metrics",
                 inputs=(flag("--text", type=Path, required=True, help="receipt (status.json) of the sentence archive"),
                         flag("--embeddings", type=Path, required=True, help="receipt (status.json) of the GloVe zip")))


if __name__ == "__main__":
    main()
