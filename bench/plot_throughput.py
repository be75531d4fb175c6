#!/usr/bin/env python3
"""Throughput against sentence length, ours and Hugging Face's, training and inference: a PNG and a table.

    python bench/plot_throughput.py [--quick] [--output bench/throughput_vs_length.png] [--markdown PATH]

Every batch holds sentences of exactly L characters (L = 16, 32, 64, 96, 126; 126 characters fill the
128-token window), cut from MSRA's running text. albert_tiny-sized models, float32, this machine's threads:

- training: 32 sentences a step through our trainer's step (``bench_training.ours_train_step``: ALBERT +
  BiLSTM + CRF) and through Hugging Face ``AlbertForTokenClassification`` with AdamW
  (``bench_training.peer_train_step``); all tags are ``O`` (speed does not depend on them);
- inference: our Python Predictor and Hugging Face's model (argmax), 128 sentences a batch, as
  ``bench_inference.py`` measures them (its helpers run here).

Both frameworks run in this one process, ours first; the table and ``bench_training.py`` (one process per
configuration) agree when the machine is otherwise idle.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_training import (
    MSRA_TRAIN,
    Batch,
    Corpus,
    encoder_sizes,
    load_corpus,
    machine,
    ours_train_step,
    peer_train_step,
    time_steps,
)

REPO = Path(__file__).resolve().parents[1]
LENGTHS = (16, 32, 64, 96, 126)


def fixed_length_batches(corpus: Corpus, length: int, batch_size: int, count: int) -> list[Batch]:
    """``count`` batches of ``batch_size`` consecutive ``length``-character pieces of the corpus's token stream."""
    tokens = corpus.examples.token_ids
    rows = batch_size * count
    if rows * length > len(tokens):
        raise SystemExit(f"the corpus has {len(tokens)} characters: too few for {rows} rows of {length}")
    token_ids = tokens[:rows * length].reshape(count, batch_size, length)
    return [(ids, np.zeros_like(ids), np.full(batch_size, length, np.int32)) for ids in token_ids]


def fixed_length_texts(texts: list[str], length: int, count: int) -> list[str]:
    stream = "".join(texts)
    return [stream[start:start + length] for start in range(0, count * length, length)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: L 16 and 64, tiny batches, 1 step")
    parser.add_argument("--output", type=Path, help="the PNG (default bench/throughput_vs_length.png; "
                                                    "with --quick, a temporary file)")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    parser.add_argument("--batch-size", type=int, default=32, help="training batch size")
    parser.add_argument("--warmup", type=int, default=2, help="training warm-up steps per length")
    parser.add_argument("--steps", type=int, default=8, help="measured training steps per length")
    parser.add_argument("--texts", type=int, default=512, help="sentences per inference measurement")
    args = parser.parse_args()
    lengths = LENGTHS
    if args.quick:
        lengths, args.batch_size, args.warmup, args.steps, args.texts = (16, 64), 4, 1, 1, 64
    output = args.output or (Path(tempfile.gettempdir()) / "throughput_vs_length.quick.png" if args.quick
                             else REPO / "bench" / "throughput_vs_length.png")

    started = time.monotonic()
    from albert_ner.resources import available_cores
    from bench_inference import bench_hugging_face, bench_predictor
    from tiny_model import msra_texts, random_tiny_model

    threads = available_cores()
    corpus = load_corpus(5000 if args.quick else None, MSRA_TRAIN)
    texts = msra_texts()
    training = {length: fixed_length_batches(corpus, length, args.batch_size, args.warmup + args.steps)
                for length in lengths}
    inference = {length: fixed_length_texts(texts, length, args.texts) for length in lengths}
    results: dict[tuple[str, str], dict[int, float | str]] = {}

    def record(key: tuple[str, str], length: int, value: float | str) -> None:
        results.setdefault(key, {})[length] = value
        print(f"  {key[0]} {key[1]} L={length}: " + (f"{value:,.1f} sentences/s" if isinstance(value, float)
                                                      else value), flush=True)

    step = ours_train_step("tiny", "float32", corpus, args.batch_size)
    for length in lengths:
        record(("albert-ner", "training"), length, time_steps(step, training[length], args.warmup)["sentences_per_s"])
    with tempfile.TemporaryDirectory() as temporary:
        predictor = random_tiny_model(Path(temporary) / "model", texts)
        for length in lengths:
            record(("albert-ner", "inference"), length, bench_predictor(predictor, inference[length]))
    try:
        step = peer_train_step(encoder_sizes("tiny", corpus.vocab_size), "float32", corpus, threads)
    except ImportError as error:
        step = None
        print(f"  Hugging Face skipped ({error})")
    if step is not None:
        for length in lengths:
            record(("hugging-face", "training"), length,
                   time_steps(step, training[length], args.warmup)["sentences_per_s"])
        for length in lengths:
            record(("hugging-face", "inference"), length, bench_hugging_face(inference[length], threads))

    header = (f"Sentences/s against sentence length, albert_tiny size, float32; {machine()}, {threads} threads; "
              f"training batch {args.batch_size} ({args.steps} steps after {args.warmup}), inference "
              f"{args.texts} sentences")
    lines = ["| L (characters) | " + " | ".join(f"{framework} {mode}" for framework, mode in results)
             + " | ours / HF training | ours / HF inference |",
             "|---:|" + "---:|" * (len(results) + 2)]
    for length in lengths:
        values = [results[key].get(length) for key in results]
        ratios = []
        for mode in ("training", "inference"):
            ours = results.get(("albert-ner", mode), {}).get(length)
            peer = results.get(("hugging-face", mode), {}).get(length)
            ratios.append(f"{ours / peer:.2f}" if isinstance(ours, float) and isinstance(peer, float) else "n/a")
        lines.append(f"| {length} | " + " | ".join(f"{value:,.1f}" if isinstance(value, float) else str(value)
                                                  for value in values) + " | " + " | ".join(ratios) + " |")
    print("\n" + header + "\n\n" + "\n".join(lines))
    plot(results, header, output)
    print(f"\nplot: {output} (total {time.monotonic() - started:.0f} s)")
    if args.markdown:
        args.markdown.write_text(header + "\n\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return 0


def plot(results: dict[tuple[str, str], dict[int, float | str]], title: str, output: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharex=True)
    styles = {"albert-ner": ("tab:blue", "albert-ner (TF): ALBERT + BiLSTM + CRF"),
              "hugging-face": ("tab:orange", "HF AlbertForTokenClassification (PyTorch)")}
    for axis, mode in zip(axes, ("training", "inference"), strict=True):
        for framework, (color, label) in styles.items():
            points = sorted((length, value) for length, value in results.get((framework, mode), {}).items()
                            if isinstance(value, float))
            if points:
                axis.plot(*zip(*points, strict=True), marker="o", color=color, label=label)
        axis.set_yscale("log")
        axis.set_xticks(sorted({length for values in results.values() for length in values}))
        axis.set_title(mode)
        axis.set_xlabel("sentence length (characters)")
        axis.set_ylabel("sentences/s")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(title, fontsize=8, wrap=True)
    figure.tight_layout()
    figure.savefig(output, dpi=120)
    plt.close(figure)


if __name__ == "__main__":
    sys.exit(main())
