"""The H2 data (Hlav §5): sentences with a binary label, GloVe vectors, and a generated stand-in.

On-disk formats (the official archives', read in place, never extracted):
- text: `rt-polaritydata.tar.gz`, the sentence polarity data set v1.0 (Pang & Lee 2005):
  members `rt-polaritydata/rt-polarity.pos` and `.neg`, one lower-cased, tokenised sentence a line,
  Latin-1. The thesis says only "Sentiment Analysis from Netflix reviews dataset" with 5330
  sentences (tensors (4264|533|533, 50, 300)); no such data set can be identified from that, so
  this one (movie-review sentences, 5331 + 5331) is orthojac's `choice`.
- embeddings: a zip holding a GloVe text file (`glove.6B.300d.txt` of `glove.6B.zip`,
  Pennington et al. 2014): one word and its 300 floats a line, separated by spaces.

Encoding (Keras' defaults, `choice`: the thesis used Keras): tokens are the whitespace-split
lower-cased sentence; each maps to its GloVe vector, or to the zero vector when GloVe has none;
sequences are padded with zero vectors, or truncated, at the front to `seq_len` (Keras'
`pad_sequences`: padding and truncating "pre"). Index 0 of the embedding table is that zero
vector.

    python -m orthojac sentiment stand-in --out-dir results/data/hlav_lstm_stand_in
writes a generated corpus and embedding file in these formats (not the thesis data), each with a
receipt `status.json` whose status is "generated": for the tests and the quick run.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..files import DataError, atomic_write_bytes, write_text_atomic
from .settings import EMBEDDINGS_MEMBER

TEXT_FILE = "rt-polaritydata.tar.gz"
TEXT_MEMBERS = {"rt-polaritydata/rt-polarity.pos": 1, "rt-polaritydata/rt-polarity.neg": 0}
EMBEDDINGS_FILE = "glove.6B.zip"


def read_receipt(path: Path) -> dict:
    """The receipt (status.json) of orthojac.data.downloads or of `stand-in`, with `path` set to the
    file it vouches for."""
    path = Path(path)
    try:
        receipt = json.loads(path.read_text())
        receipt["status"]
    except (OSError, ValueError, KeyError) as err:
        raise DataError(f"{path}: not a data receipt ({err})") from err
    if receipt["status"] in ("verified", "generated"):
        receipt["path"] = path.parent / receipt["file"]
    return receipt


def read_sentences(archive: Path) -> tuple[list[list[str]], list[int]]:
    """Tokenised sentences and their labels (1 positive, 0 negative) from the polarity archive."""
    sentences, labels = [], []
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member, label in TEXT_MEMBERS.items():
                handle = tar.extractfile(member)
                if handle is None:
                    raise DataError(f"{archive}: {member} is not a file")
                for line in handle.read().decode("latin-1").splitlines():
                    if line.strip():
                        sentences.append(line.lower().split())
                        labels.append(label)
    except KeyError as err:
        raise DataError(f"{archive}: no member {err}; want {sorted(TEXT_MEMBERS)}") from err
    except (tarfile.TarError, OSError, EOFError) as err:
        raise DataError(f"{archive}: not a readable tar.gz ({err})") from err
    return sentences, labels


def read_vectors(archive: Path, member: str, vocabulary: set[str]) -> tuple[dict[str, np.ndarray], int]:
    """The GloVe vectors of the words in `vocabulary` ({word: float32 vector}) and the dimension."""
    vectors, dim = {}, None
    try:
        with zipfile.ZipFile(archive) as zf, zf.open(member) as raw:
            for number, line in enumerate(io.TextIOWrapper(raw, encoding="utf-8"), 1):
                word, _, rest = line.rstrip("\n").partition(" ")
                if dim is None:
                    dim = len(rest.split(" "))
                if word in vocabulary:
                    values = np.array(rest.split(" "), dtype=np.float32)
                    if len(values) != dim:
                        raise DataError(f"{archive}:{member} line {number}: {len(values)} values, expected {dim}")
                    vectors[word] = values
    except KeyError as err:
        raise DataError(f"{archive}: no member {member!r}") from err
    except (zipfile.BadZipFile, OSError) as err:
        raise DataError(f"{archive}: not a readable zip ({err})") from err
    if dim is None:
        raise DataError(f"{archive}:{member} is empty")
    return vectors, dim


def encode(sentences: list[list[str]], vectors: dict[str, np.ndarray], dim: int,
           seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token indices (N, seq_len), padded and truncated at the front, and the embedding table
    (V, dim) whose row 0 is the zero vector (padding and words without a vector)."""
    words = sorted({w for s in sentences for w in s if w in vectors})
    index = {w: i + 1 for i, w in enumerate(words)}
    table = np.zeros((len(words) + 1, dim), dtype=np.float32)
    for w, i in index.items():
        table[i] = vectors[w]
    tokens = np.zeros((len(sentences), seq_len), dtype=np.int64)
    for row, sentence in enumerate(sentences):
        ids = [index.get(w, 0) for w in sentence][-seq_len:]
        if ids:
            tokens[row, seq_len - len(ids):] = ids
    return torch.from_numpy(tokens), torch.from_numpy(table)


def load(text: Path, embeddings: Path, member: str, seq_len: int, sizes: tuple[int, int, int],
         corpus_seed: int) -> dict:
    """{"train"|"val"|"test": (token indices, labels float32), "table": embedding table, "coverage":
    share of tokens with a vector}: a random subset of train + val + test sentences (permutation
    seeded by `corpus_seed`), split in that order."""
    sentences, labels = read_sentences(text)
    need = sum(sizes)
    if need > len(sentences):
        raise DataError(f"{text}: {len(sentences)} sentences, fewer than train + val + test = {need}")
    order = torch.randperm(len(sentences), generator=torch.Generator().manual_seed(corpus_seed))[:need].tolist()
    chosen = [sentences[i] for i in order]
    vectors, dim = read_vectors(embeddings, member, {w for s in chosen for w in s})
    tokens, table = encode(chosen, vectors, dim, seq_len)
    y = torch.tensor([labels[i] for i in order], dtype=torch.float32)
    cuts = np.cumsum((0,) + tuple(sizes))
    out = {name: (tokens[a:b], y[a:b]) for name, a, b in zip(("train", "val", "test"), cuts[:-1], cuts[1:])}
    total = sum(len(s) for s in chosen)
    out["table"] = table
    out["coverage"] = sum(w in vectors for s in chosen for w in s) / max(total, 1)
    return out


def write_stand_in(out_dir: Path, sentences: int = 1000, dim: int = 300, seed: int = 0) -> dict[str, str]:
    """A generated corpus and embedding file in the official formats: {file: sha256}.

    Words are `good<i>`, `bad<i>` and neutral `w<i>`; a sentence of 4–30 words holds a few words of
    its polarity among neutral ones (half the sentences each polarity). Vectors are Gaussian, with
    +1 (good) or −1 (bad) added to the first coordinate, so the label is learnable from them; a few
    words have no vector (they encode to zero, as in GloVe)."""
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    polar = {1: [f"good{i}" for i in range(20)], 0: [f"bad{i}" for i in range(20)]}
    neutral = [f"w{i}" for i in range(200)]
    lines = {1: [], 0: []}
    for k in range(sentences):
        label = k % 2
        words = list(rng.choice(neutral, rng.integers(3, 27))) + list(rng.choice(polar[label], rng.integers(1, 4)))
        rng.shuffle(words)
        lines[label].append(" ".join(words) + " .")
    text = io.BytesIO()
    with tarfile.open(fileobj=text, mode="w:gz") as tar:
        for member, label in TEXT_MEMBERS.items():
            payload = ("\n".join(lines[label]) + "\n").encode("latin-1")
            info = tarfile.TarInfo(member)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    rows = []
    for word in [".", *polar[1], *polar[0], *neutral[:-10]]:  # the last 10 neutral words: no vector
        v = rng.normal(0.0, 0.3, dim)
        v[0] += 1.0 if word.startswith("good") else -1.0 if word.startswith("bad") else 0.0
        rows.append(word + " " + " ".join(f"{x:.5f}" for x in v))
    emb = io.BytesIO()
    with zipfile.ZipFile(emb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(EMBEDDINGS_MEMBER, "\n".join(rows) + "\n")
    digests = {}
    for sub, name, blob in (("text", TEXT_FILE, text.getvalue()), ("embeddings", EMBEDDINGS_FILE, emb.getvalue())):
        atomic_write_bytes(out_dir / sub / name, blob)
        digests[name] = hashlib.sha256(blob).hexdigest()
        receipt = {"status": "generated", "file": name, "size": len(blob), "sha256": digests[name],
                   "source": f"orthojac.thesis.sentiment stand-in (seed {seed}): generated, not the thesis data"}
        write_text_atomic(out_dir / sub / "status.json", json.dumps(receipt, indent=1) + "\n")
    return digests


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="orthojac sentiment", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    st = sub.add_parser("stand-in", help="write a generated corpus and embedding file (not the thesis data)")
    st.add_argument("--out-dir", type=Path, required=True, help="folder for text/ and embeddings/ with receipts")
    st.add_argument("--sentences", type=int, default=1000, help="sentences to generate (half positive)")
    st.add_argument("--dim", type=int, default=300, help="embedding dimension")
    st.add_argument("--seed", type=int, default=0, help="seed of the generator")
    args = parser.parse_args(argv)
    if args.sentences < 2 or args.dim < 1:
        raise SystemExit(f"--sentences must be ≥ 2 and --dim ≥ 1, got {args.sentences}, {args.dim}")
    write_stand_in(args.out_dir, args.sentences, args.dim, args.seed)


if __name__ == "__main__":
    main()
