#!/usr/bin/env python3
"""What the lexicon costs: training and prediction throughput with jieba's dictionary against without, and
peak memory of training and serving with it.

    python bench/bench_lexicon.py [--quick] [--markdown PATH]

- training: the trainer's own step (``TrainStep``) on the main job's model (ALBERT-tiny-sized, 2 layers,
  BiLSTM 128, CRF, mixed bfloat16) without and with the lexicon features, on the same real MSRA training
  batches (length-grouped, as ``train()`` plans them); the two models alternate pass by pass in one
  process, so a noisy machine slows both alike; the median pass is reported;
- prediction: the Python Predictor on the MSRA test set, without and with the dictionary (matching
  included), alternating in the same way;
- peak memory: a fresh process per case, its peak RSS (``VmHWM``) after reading the dictionary,
  matching the MSRA training set and running training steps; and after loading a model directory with the
  dictionary and predicting 1,000 sentences (what `serve` holds per worker), and the same for the
  SavedModel loaded with plain TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "container" / "ner"))
sys.path.insert(0, str(REPO / "bench"))
MSRA_TRAIN = REPO / "data" / "msra" / "train" / "msra_train.txt"
ENTITY_TYPES = ["LOC", "ORG", "PER"]
SEED = 42


def training_setup(lexicon_choice: str, sentences: int | None):
    """The main job's model and optimizers, and its encoded MSRA training windows."""
    import keras
    import tensorflow as tf

    from albert_ner.batching import EncodedExamples
    from albert_ner.hyperparameters import Hyperparameters
    from albert_ner.lexicon import choose_lexicon
    from albert_ner.modeling.albert import sized_config
    from albert_ner.modeling.tagger import AlbertTagger, build_model
    from albert_ner.optimization import OptimizerSettings, TrainStep, make_loss_scale, make_optimizers, set_precision
    from albert_ner.readers.conll import read_conll
    from albert_ner.tag_schemes import LabelMap
    from albert_ner.tokenization import CharTokenizer, Vocab

    config = json.loads((REPO / "configs" / "msra-cpu.json").read_text(encoding="utf-8"))
    hp = Hyperparameters.from_strings({**config, "lexicon": lexicon_choice})
    keras.utils.set_random_seed(SEED)
    precision = set_precision(hp.mixed_precision)
    train, _ = read_conll(MSRA_TRAIN, repair=True)
    train = train[:sentences]
    vocab = Vocab.build([sentence.tokens for sentence in train])
    label_map = LabelMap(ENTITY_TYPES, "bioes")
    lexicon = choose_lexicon(hp.lexicon, None)
    examples = EncodedExamples(train, hp.max_seq_length - 2, CharTokenizer(vocab), label_map,
                               None if lexicon is None else lexicon.matcher)
    model = AlbertTagger(sized_config(hp.encoder_size, len(vocab), hp.num_hidden_layers), len(label_map),
                         cls_id=vocab.cls_id, sep_id=vocab.sep_id, pad_id=vocab.pad_id, lstm_units=hp.lstm_units,
                         dropout=hp.dropout, lexicon_size=examples.lexicon_size,
                         allowed=label_map.allowed_transitions())
    build_model(model, vocab.pad_id)
    optimizers = make_optimizers(model, OptimizerSettings.of(hp, pretrained=False), total_steps=10_000)
    step = TrainStep(model, optimizers, make_loss_scale(precision), tf.distribute.get_strategy(), hp.clip_norm,
                     precision)
    return hp, examples, step


def bench_training(sentences: int, steps: int, passes: int) -> dict[str, float]:
    from albert_ner.batching import batch_plan

    contenders = {}
    for choice in ("off", "general"):
        hp, examples, step = training_setup(choice, sentences)
        plan = batch_plan(examples.lengths, hp.batch_size, SEED, 1, group_by_length=True)
        batches = [examples.batch(indices) for indices in plan[:steps]]
        for batch in batches:  # trace every shape once, untimed
            float(step(*batch))
        contenders[choice] = (step, batches)
    timings: dict[str, list[float]] = {choice: [] for choice in contenders}
    for _ in range(passes):
        for choice, (step, batches) in contenders.items():
            started = time.perf_counter()
            for batch in batches:
                loss = step(*batch)
            float(loss)
            timings[choice].append(time.perf_counter() - started)
    windows = {choice: sum(len(batch[2]) for batch in batches) for choice, (_, batches) in contenders.items()}
    return {choice: windows[choice] / statistics.median(times) for choice, times in timings.items()}


def bench_prediction(texts: list[str], passes: int) -> dict[str, float]:
    from albert_ner.lexicon import choose_lexicon
    from tiny_model import random_tiny_model

    with tempfile.TemporaryDirectory() as temporary:
        predictors = {"off": random_tiny_model(Path(temporary) / "off", texts),
                      "general": random_tiny_model(Path(temporary) / "general", texts,
                                                   lexicon=choose_lexicon("general", None))}
    tokens = [list(text) for text in texts]
    for predictor in predictors.values():
        predictor.predict(tokens[:256])
    timings: dict[str, list[float]] = {choice: [] for choice in predictors}
    for _ in range(passes):
        for choice, predictor in predictors.items():
            started = time.perf_counter()
            predictor.predict(tokens)
            timings[choice].append(time.perf_counter() - started)
    return {choice: len(texts) / statistics.median(times) for choice, times in timings.items()}


def memory_case(case: str, sentences: int | None, model_dir: str) -> None:
    """One fresh process's measurement; prints its peak RSS in MiB."""
    from tiny_model import msra_texts

    if case.startswith("train-"):
        hp, examples, step = training_setup(case.removeprefix("train-"), sentences)
        from albert_ner.batching import batch_plan

        for indices in batch_plan(examples.lengths, hp.batch_size, SEED, 1, group_by_length=True)[:20]:
            float(step(*examples.batch(indices)))
    elif case == "serve-predictor":
        from albert_ner.prediction import Predictor

        Predictor.load(model_dir).predict([list(text) for text in msra_texts()[:1000]])
    elif case == "serve-saved-model":
        import tensorflow as tf

        serve = tf.saved_model.load(str(Path(model_dir) / "1")).signatures["serving_default"]
        texts = msra_texts()[:1000]
        for start in range(0, len(texts), 64):
            serve(text=tf.constant(texts[start:start + 64]))
    from albert_ner.resources import host_memory_mib

    print(json.dumps({"peak_mib": host_memory_mib()[1]}))


def measure_memory(case: str, sentences: int | None, model_dir: Path) -> float:
    command = [sys.executable, __file__, "--memory-case", case, "--model-dir", str(model_dir)]
    if sentences is not None:
        command += ["--sentences", str(sentences)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])["peak_mib"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2,000 sentences, few steps")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    parser.add_argument("--memory-case", help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", default="", help=argparse.SUPPRESS)
    parser.add_argument("--sentences", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_case:
        memory_case(args.memory_case, args.sentences, args.model_dir)
        return 0
    from albert_ner.export import export_saved_model
    from albert_ner.lexicon import choose_lexicon
    from albert_ner.resources import available_cores
    from tiny_model import msra_texts, random_tiny_model

    texts = msra_texts()[:500 if args.quick else 2000]
    steps, passes = (4, 2) if args.quick else (40, 5)
    sentences = 2000 if args.quick else None
    print(f"{available_cores()} CPU threads; training: {steps} MSRA batches x {passes} passes; prediction: "
          f"{len(texts)} MSRA test sentences x {passes} passes", flush=True)
    training = bench_training(sentences or 20_000, steps, passes)
    print(f"training windows/s: {training}", flush=True)
    prediction = bench_prediction(texts, passes)
    print(f"prediction sentences/s: {prediction}", flush=True)
    with tempfile.TemporaryDirectory() as temporary:
        model_dir = Path(temporary) / "model"
        export_saved_model(random_tiny_model(model_dir, texts, lexicon=choose_lexicon("general", None)), model_dir)
        memory = {case: measure_memory(case, sentences, model_dir)
                  for case in ("train-off", "train-general", "serve-predictor", "serve-saved-model")}
    print(f"peak RSS MiB: {memory}", flush=True)

    lines = ["| | without lexicon | with jieba's dictionary | with / without |", "|---|---:|---:|---:|",
             f"| training, windows/s (TrainStep, main job's model, bf16) | {training['off']:,.1f} | "
             f"{training['general']:,.1f} | {training['general'] / training['off']:.2f}x |",
             f"| prediction, sentences/s (Python Predictor, albert_tiny) | {prediction['off']:,.0f} | "
             f"{prediction['general']:,.0f} | {prediction['general'] / prediction['off']:.2f}x |",
             "", "| peak RSS (fresh process) | MiB |", "|---|---:|",
             f"| training, no lexicon{' (2,000 sentences)' if args.quick else ' (all MSRA training data)'}, "
             f"20 steps | {memory['train-off']:,.0f} |",
             f"| training, jieba's dictionary, same | {memory['train-general']:,.0f} |",
             f"| serving: Predictor.load + 1,000 sentences, jieba's dictionary | {memory['serve-predictor']:,.0f} |",
             f"| serving: SavedModel (plain TensorFlow) + 1,000 sentences, jieba's dictionary | "
             f"{memory['serve-saved-model']:,.0f} |"]
    print("\n" + "\n".join(lines))
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
