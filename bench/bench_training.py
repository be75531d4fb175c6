#!/usr/bin/env python3
"""Training speed: our real training step against Hugging Face's ALBERT, on MSRA's length distribution.

    python bench/bench_training.py [--quick] [--markdown PATH] [--json PATH]

For each encoder size (tiny, base; from scratch, ``encoder_size`` presets), batching and precision, one
fresh process measures our tagger (ALBERT + BiLSTM 128 + CRF, TensorFlow) through
``albert_ner.optimization.TrainStep``, the step ``train()`` runs, and another the peer, Hugging Face
``AlbertForTokenClassification`` (PyTorch) of the same encoder size with a linear token head (no BiLSTM, no
CRF), trained with AdamW on the same batches. Both get the same threads (all available cores).

Batches are real MSRA training windows planned by ``batch_plan`` and padded by ``EncodedExamples``:

- ``grouped``: length grouping (our default), each batch padded to its longest sentence;
- ``padded-128``: the same sentences, every batch padded to 128 tokens as the reference code did;
- ``random`` (on request): ``length_grouping=false``, random batches padded to their longest.

The measured batches are chosen at evenly spaced quantiles of the plan's batch lengths, so a few steps
represent a whole epoch. Reported: sentences/s and characters/s in the steady state (after the warm-up
steps), the first step's time (graph tracing and compilation for ours, allocations for the peer), and the
process's peak host RSS (and peak GPU memory when there is a GPU). Precisions: float32 and mixed bfloat16
on CPU; float32, float16 and bfloat16 on a GPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pickle
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "container" / "ner"))
MSRA_TRAIN = REPO / "data" / "msra" / "train" / "msra_train.txt"
ENTITY_TYPES = ["LOC", "ORG", "PER"]
MAX_SEQ_LENGTH = 128
SEED = 42
GROUPINGS = ("grouped", "padded-128", "random")
OURS = "albert-ner"
PEER = "hugging-face"
MODEL_NAMES = {OURS: "ours", PEER: "HF"}
LEGEND = ("ours: albert-ner, ALBERT + BiLSTM 128 + CRF (TensorFlow, `TrainStep`, two AdamW). "
          "HF: Hugging Face AlbertForTokenClassification, the same-size ALBERT encoder + a linear token head, "
          "no BiLSTM/CRF (PyTorch, AdamW). Same batches, same threads; sentences/s and characters/s in the "
          "steady state; first step = graph tracing and compilation (ours) or first allocations (HF); "
          "peak RSS of the configuration's own process.")

Batch = tuple[np.ndarray, np.ndarray, np.ndarray]  # token_ids [B, T], tag_ids [B, T], lengths [B]


# ------------------------------------------------------------------------------------------- batches
@dataclasses.dataclass
class Corpus:
    """MSRA training windows encoded as the trainer encodes them, with the ids the models need."""

    examples: Any  # albert_ner.training.EncodedExamples
    vocab_size: int
    cls_id: int
    sep_id: int
    pad_id: int
    sentences: int


def load_corpus(max_sentences: int | None = None, path: Path = MSRA_TRAIN) -> Corpus:
    """Read MSRA training data, cut it into windows and encode it, as ``train()`` does from scratch."""
    from albert_ner.batching import EncodedExamples
    from albert_ner.readers.conll import read_conll
    from albert_ner.tag_schemes import LabelMap
    from albert_ner.tokenization import CharTokenizer, Vocab

    if not path.exists():
        raise SystemExit(f"{path} is missing: run `python data/fetch_msra.py` first")
    sentences, _ = read_conll(path, repair=True)
    sentences = sentences[:max_sentences]
    vocab = Vocab.build([sentence.tokens for sentence in sentences])
    examples = EncodedExamples(sentences, MAX_SEQ_LENGTH - 2, CharTokenizer(vocab), LabelMap(ENTITY_TYPES, "bioes"))
    return Corpus(examples, len(vocab), vocab.cls_id, vocab.sep_id, vocab.pad_id, len(sentences))


def quantile_batches(plan: Sequence[np.ndarray], lengths: np.ndarray, batch_size: int, warmup: int,
                     steps: int) -> list[np.ndarray]:
    """The first ``warmup`` full batches of the plan, then ``steps`` batches at evenly spaced quantiles of
    the remaining batches' longest sentence (in a seeded random order), so that few steps stand for an epoch."""
    full = [batch for batch in plan if len(batch) == batch_size]
    if len(full) < warmup + steps:
        raise SystemExit(f"only {len(full)} full batches of {batch_size}: fewer than {warmup} + {steps} steps")
    rest = sorted(full[warmup:], key=lambda batch: int(lengths[batch].max()))
    picked = [rest[int((number + 0.5) * len(rest) / steps)] for number in range(steps)]
    order = np.random.default_rng(SEED).permutation(steps)
    return full[:warmup] + [picked[index] for index in order]


def sample_batches(corpus: Corpus, grouping: str, batch_size: int, warmup: int, steps: int,
                   bucket: int = 1) -> list[Batch]:
    """Warm-up plus measured batches of one grouping (see the module docstring), from epoch 1's plan."""
    from albert_ner.batching import batch_plan

    examples = corpus.examples
    plan = batch_plan(examples.lengths, batch_size, SEED, 1, group_by_length=grouping != "random")
    batches = []
    for indices in quantile_batches(plan, examples.lengths, batch_size, warmup, steps):
        token_ids, tag_ids, lengths, _ = examples.batch(indices)
        width = MAX_SEQ_LENGTH - 2 if grouping == "padded-128" else token_ids.shape[1]
        width = min(MAX_SEQ_LENGTH - 2, -(-width // bucket) * bucket)
        extra = ((0, 0), (0, width - token_ids.shape[1]))
        batches.append((np.pad(token_ids, extra, constant_values=corpus.pad_id), np.pad(tag_ids, extra), lengths))
    return batches


# ------------------------------------------------------------------------------------------- steps
def ours_train_step(size: str, precision: str, corpus: Corpus, batch_size: int, xla: bool = False,
                    lstm: str = "auto") -> Callable[[np.ndarray, np.ndarray, np.ndarray], float]:
    """The trainer's own step (``TrainStep``) on a from-scratch tagger, hyperparameters at their defaults.

    Each call waits for its step (the loss as a float), so that the timings are the device's.

    ``lstm="generic"`` swaps in a BiLSTM that never takes the cuDNN kernel (what XLA can compile on a GPU).
    """
    import keras

    from albert_ner.cluster import choose_strategy
    from albert_ner.hyperparameters import Hyperparameters
    from albert_ner.modeling.albert import sized_config
    from albert_ner.modeling.tagger import AlbertTagger, build_model
    from albert_ner.optimization import OptimizerSettings, TrainStep, make_loss_scale, make_optimizers, set_precision
    from albert_ner.tag_schemes import LabelMap

    hp = Hyperparameters(encoder_size=size, batch_size=batch_size, mixed_precision=precision,
                         max_seq_length=MAX_SEQ_LENGTH, seed=SEED)
    keras.utils.set_random_seed(hp.seed)
    precision = set_precision(hp.mixed_precision)
    strategy = choose_strategy(["localhost"], "localhost", worker_port=7777)
    label_map = LabelMap(ENTITY_TYPES, "bioes")
    with strategy.scope():
        model = AlbertTagger(sized_config(size, corpus.vocab_size), len(label_map), cls_id=corpus.cls_id,
                             sep_id=corpus.sep_id, pad_id=corpus.pad_id, lstm_units=hp.lstm_units,
                             dropout=hp.dropout, use_crf=hp.use_crf, allowed=label_map.allowed_transitions())
        if lstm == "generic":
            dtype = model.bilstm.dtype_policy
            model.bilstm = keras.layers.Bidirectional(
                keras.layers.LSTM(hp.lstm_units, return_sequences=True, use_cudnn=False, dtype=dtype),
                name="bilstm", dtype=dtype)
        build_model(model, corpus.pad_id)
        optimizers = make_optimizers(model, OptimizerSettings.of(hp, pretrained=False), total_steps=10_000)
        loss_scale = make_loss_scale(precision)
    step = TrainStep(model, optimizers, loss_scale, strategy, hp.clip_norm, precision,
                     jit_compile=True if xla else None)
    return lambda token_ids, tag_ids, lengths: float(step(token_ids, tag_ids, lengths,
                                                          np.zeros((*token_ids.shape, 0), np.uint8)))


def peer_train_step(sizes: dict[str, Any], precision: str, corpus: Corpus, threads: int,
                    ) -> Callable[[np.ndarray, np.ndarray, np.ndarray], float]:
    """Hugging Face's model with our encoder's ``sizes`` (:func:`encoder_sizes`), AdamW at our encoder's
    defaults. Imports no TensorFlow."""
    import torch

    from albert_ner.tag_schemes import LabelMap
    from hugging_face import albert_for_token_classification, make_train_step

    torch.set_num_threads(threads)
    torch.manual_seed(SEED)
    model = albert_for_token_classification(sizes, num_labels=len(LabelMap(ENTITY_TYPES, "bioes")))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return make_train_step(model, precision, device, cls_id=corpus.cls_id, sep_id=corpus.sep_id,
                           pad_id=corpus.pad_id)


def encoder_sizes(size: str, vocab_size: int) -> dict[str, Any]:
    """Our from-scratch ``AlbertConfig`` of ``encoder_size`` as a plain dict, for the peer to copy."""
    from albert_ner.modeling.albert import sized_config

    return sized_config(size, vocab_size).to_dict()


def time_steps(step: Callable[[np.ndarray, np.ndarray, np.ndarray], float], batches: Sequence[Batch],
               warmup: int, rehearse: bool = False, passes: int = 1) -> dict[str, Any]:
    """Run every batch through ``step``; the first ``warmup`` are not in the steady-state figures.

    ``rehearse`` also runs the measured batches once before timing them, so that each of their shapes is
    compiled first (XLA compiles once per shape; a real epoch meets each bucketed shape many times).
    ``passes`` times the measured batches that many times over and reports the median pass: on a shared
    virtual machine one pass can be 5-20% off the next with nothing changed (bench/README.md).
    """
    measured = batches[warmup:]
    started = time.perf_counter()
    step(*batches[0])
    first_step = time.perf_counter() - started
    for batch in list(batches[1:warmup]) + (list(measured) if rehearse else []):
        step(*batch)
    warmup_seconds = time.perf_counter() - started
    step_seconds = []
    for _ in range(passes):
        step_seconds.append([])
        for batch in measured:
            started = time.perf_counter()
            loss = step(*batch)
            step_seconds[-1].append(time.perf_counter() - started)
    pass_seconds = [sum(seconds) for seconds in step_seconds]
    median_seconds = float(np.median(pass_seconds))
    sentences = sum(len(batch[2]) for batch in measured)
    characters = sum(int(batch[2].sum()) for batch in measured)
    return {"first_step_s": first_step, "warmup_s": warmup_seconds, "step_s": step_seconds,
            "pass_sentences_per_s": [sentences / seconds for seconds in pass_seconds],
            "sentences": sentences, "characters": characters, "sentences_per_s": sentences / median_seconds,
            "characters_per_s": characters / median_seconds,
            "padded_tokens": sum(batch[0].size for batch in measured), "last_loss": loss}


# ------------------------------------------------------------------------------------------ worker
def run_worker(spec_path: Path) -> int:
    """One configuration in this fresh process: build, time, write the result JSON beside the spec."""
    spec = json.loads(spec_path.read_text())
    with open(spec["batches"], "rb") as stream:
        corpus_ids, batches = pickle.load(stream)
    corpus = Corpus(None, **corpus_ids)
    if spec["framework"] == OURS:
        step = ours_train_step(spec["size"], spec["precision"], corpus, spec["batch_size"], spec["xla"], spec["lstm"])
    else:
        step = peer_train_step(spec["encoder_sizes"], spec["precision"], corpus, spec["threads"])
    result = time_steps(step, batches, spec["warmup"], rehearse=spec["xla"], passes=spec["passes"])
    result["peak_rss_mib"] = peak_rss_mib()
    result["peak_gpu_mib"] = peak_gpu_mib(spec["framework"])
    Path(spec["result"]).write_text(json.dumps(result))
    return 0


def peak_rss_mib() -> float:
    """This process's peak RSS: VmHWM, which (unlike getrusage's ru_maxrss) does not inherit the peak of
    the parent that forked it."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_gpu_mib(framework: str) -> float | None:
    if framework == OURS:
        from albert_ner.resources import gpu_memory_mib

        peaks = gpu_memory_mib()
        return max(peaks) if peaks else None
    import torch

    return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None


def run_configuration(spec: dict[str, Any], work: Path, timeout: float) -> dict[str, Any]:
    name = f"{spec['framework']}-{spec['size']}-{spec['grouping']}-{spec['precision']}"
    spec_path, result_path = work / f"{name}.json", work / f"{name}.result.json"
    spec_path.write_text(json.dumps({**spec, "result": str(result_path)}))
    try:
        completed = subprocess.run([sys.executable, __file__, "--worker", str(spec_path)], capture_output=True,
                                   text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if completed.returncode or not result_path.exists():
        lines = [line for line in completed.stderr.splitlines() if line.strip()]
        return {"error": f"failed: {lines[-1][:200] if lines else f'exit status {completed.returncode}'}"}
    return json.loads(result_path.read_text())


# ------------------------------------------------------------------------------------------ report
@dataclasses.dataclass
class Row:
    size: str
    grouping: str
    precision: str
    framework: str
    steps: int
    batch_size: int
    result: dict[str, Any]

    @property
    def rate(self) -> float | None:
        return self.result.get("sentences_per_s")


def fmt(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def ratio(numerator: float | None, denominator: float | None) -> str:
    return "n/a" if not numerator or not denominator else f"{numerator / denominator:.2f}"


def tables(rows: Sequence[Row], gpu: bool) -> list[str]:
    lines = [LEGEND, "",
             "| encoder | model | batches | precision | sentences/s | characters/s | first step s | "
             "peak host RSS MiB |" + (" peak GPU MiB |" if gpu else "") + " batch x steps |",
             "|---|---|---|---|---:|---:|---:|---:|" + ("---:|" if gpu else "") + "---:|"]
    for row in rows:
        result = row.result
        model = MODEL_NAMES[row.framework]
        if "error" in result:
            lines.append(f"| {row.size} | {model} | {row.grouping} | {row.precision} | {result['error']} | | | |"
                         + (" |" if gpu else "") + f" {row.batch_size} x {row.steps} |")
            continue
        lines.append(f"| {row.size} | {model} | {row.grouping} | {row.precision} | {fmt(row.rate, 1)} | "
                     f"{fmt(result['characters_per_s'])} | {result['first_step_s']:.1f} | "
                     f"{fmt(result['peak_rss_mib'])} |" + (f" {fmt(result['peak_gpu_mib'])} |" if gpu else "")
                     + f" {row.batch_size} x {row.steps} |")
    index = {(row.size, row.grouping, row.precision, row.framework): row.rate for row in rows}
    keys = list(dict.fromkeys((row.size, row.grouping, row.precision) for row in rows))
    lines += ["", "| encoder | batches | precision | ours / HF (sentences/s) |", "|---|---|---|---:|"]
    lines += [f"| {size} | {grouping} | {precision} | "
              f"{ratio(index.get((size, grouping, precision, OURS)), index.get((size, grouping, precision, PEER)))} |"
              for size, grouping, precision in keys]
    pairs = list(dict.fromkeys((row.size, row.precision, row.framework) for row in rows if row.grouping == "grouped"))
    pairs = [pair for pair in pairs if (pair[0], "padded-128", pair[1], pair[2]) in index]
    if pairs:
        lines += ["", "| encoder | precision | model | grouped / padded-128 (sentences/s) |", "|---|---|---|---:|"]
        for size, precision, framework in pairs:
            grouped = index[(size, "grouped", precision, framework)]
            padded = index[(size, "padded-128", precision, framework)]
            model = "ours" if framework == OURS else "HF"
            lines.append(f"| {size} | {precision} | {model} | {ratio(grouped, padded)} |")
    return lines


def goals(rows: Sequence[Row]) -> list[str]:
    index = {(row.size, row.grouping, row.precision, row.framework): row.rate for row in rows}
    versus = [(key[:3], rate / index[key[:3] + (PEER,)]) for key, rate in index.items()
              if key[3] == OURS and rate and index.get(key[:3] + (PEER,))]
    grouping = [(key, rate / index[(key[0], "padded-128", key[2], OURS)]) for key, rate in index.items()
                if key[1] == "grouped" and key[3] == OURS and rate and index.get((key[0], "padded-128", key[2], OURS))]
    lines = []
    if versus:
        met = [value >= 1.0 for _, value in versus]
        worst = min(versus, key=lambda item: item[1])
        lines.append(f"- Goal ours / HF >= 1.0: {'met' if all(met) else 'not met'} ({sum(met)} of {len(met)} "
                     f"configurations; lowest {worst[1]:.2f}, {' '.join(worst[0])})")
    if grouping:
        met = [value >= 2.0 for _, value in grouping]
        lines.append(f"- Goal length grouping >= 2x padding to 128 (ours): {'met' if all(met) else 'not met'} "
                     f"({sum(met)} of {len(met)}: "
                     + ", ".join(f"{key[0]} {key[2]} {value:.2f}x" for key, value in grouping) + ")")
    return lines


def machine() -> str:
    cpu = platform.processor() or "CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return cpu


# -------------------------------------------------------------------------------------------- main
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: tiny only, 3,000 sentences, batch 8, 2 warm-up + 2 measured steps")
    parser.add_argument("--sizes", default="tiny,base", help="encoder sizes (tiny, small, base, large)")
    parser.add_argument("--groupings", default="grouped,padded-128", help=f"any of {', '.join(GROUPINGS)}")
    parser.add_argument("--precisions", help="default: float32,bfloat16 on CPU; float32,float16,bfloat16 on a GPU")
    parser.add_argument("--frameworks", default=f"{OURS},{PEER}", help=f"{OURS} and/or {PEER}")
    parser.add_argument("--batch-size", type=int, default=32, help="tiny and small")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up steps, tiny and small")
    parser.add_argument("--steps", type=int, default=20, help="measured steps, tiny and small")
    parser.add_argument("--base-batch-size", type=int, default=16, help="base and large")
    parser.add_argument("--base-warmup", type=int, default=2, help="warm-up steps, base and large")
    parser.add_argument("--base-steps", type=int, default=4, help="measured steps, base and large")
    parser.add_argument("--passes", type=int, default=3,
                        help="times each configuration's measured batches are run; the median pass is reported")
    parser.add_argument("--xla", action="store_true", help="compile our step with XLA (jit_compile=True); "
                        "the measured batches then run once untimed first, to compile each shape")
    parser.add_argument("--bucket", type=int, default=1,
                        help="pad batch lengths up to a multiple of this (limits XLA recompilation)")
    parser.add_argument("--lstm", choices=("auto", "generic"), default="auto",
                        help="generic: a BiLSTM that never uses cuDNN (as XLA needs on a GPU)")
    parser.add_argument("--max-sentences", type=int, help="read only the first N MSRA training sentences")
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed to one configuration")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    parser.add_argument("--json", type=Path, help="also write every measurement to this file")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return run_worker(args.worker)
    if args.quick:
        args.sizes = "tiny" if args.sizes == parser.get_default("sizes") else args.sizes
        args.batch_size = args.base_batch_size = 8
        args.warmup = args.base_warmup = args.steps = args.base_steps = 2
        args.passes = 1
        args.max_sentences = args.max_sentences or 3000

    if args.passes < 1:
        parser.error(f"--passes {args.passes}: expected at least 1")

    started = time.monotonic()
    import tensorflow as tf

    from albert_ner.resources import available_cores

    gpu = bool(tf.config.list_physical_devices("GPU"))
    precisions = (args.precisions or ("float32,float16,bfloat16" if gpu else "float32,bfloat16")).split(",")
    sizes, groupings, frameworks = args.sizes.split(","), args.groupings.split(","), args.frameworks.split(",")
    for option, values, allowed in (("--sizes", sizes, ("tiny", "small", "base", "large")),
                                    ("--groupings", groupings, GROUPINGS), ("--frameworks", frameworks, (OURS, PEER)),
                                    ("--precisions", precisions, ("float32", "float16", "bfloat16"))):
        if set(values) - set(allowed):
            parser.error(f"{option} {','.join(values)}: expected some of {', '.join(allowed)}")
    threads = available_cores()
    corpus = load_corpus(args.max_sentences)
    lengths = corpus.examples.lengths
    versions = [f"TensorFlow {tf.__version__}"]
    try:
        import torch
        import transformers

        versions += [f"PyTorch {torch.__version__}", f"transformers {transformers.__version__}"]
    except ImportError:
        pass
    header = (f"MSRA training data: {corpus.sentences:,} sentences, {len(lengths):,} windows of <= "
              f"{MAX_SEQ_LENGTH - 2} characters (mean {lengths.mean():.1f}, median {np.median(lengths):.0f}); "
              f"{machine()}, {threads} threads{', GPU' if gpu else ', no GPU'}; {', '.join(versions)}"
              + ("; XLA" if args.xla else "") + (f"; lengths bucketed to {args.bucket}" if args.bucket > 1 else "")
              + (f"; LSTM {args.lstm}" if args.lstm != "auto" else "")
              + f"; each rate is the median of {args.passes} passes over the measured batches")
    load = os.getloadavg()[0]
    if load > 0.5:
        header += (f"; WARNING: load average {load:.1f} at the start (other work on the machine distorts the "
                   "figures, PyTorch's most of all)")
    print(header, flush=True)

    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        for size in sizes:
            small = size in ("tiny", "small")
            batch_size = args.batch_size if small else args.base_batch_size
            warmup, steps = (args.warmup, args.steps) if small else (args.base_warmup, args.base_steps)
            sizes_dict = encoder_sizes(size, corpus.vocab_size)
            for grouping in groupings:
                batches_path = work / f"{size}-{grouping}.pickle"
                with open(batches_path, "wb") as stream:
                    pickle.dump(({"vocab_size": corpus.vocab_size, "cls_id": corpus.cls_id, "sep_id": corpus.sep_id,
                                  "pad_id": corpus.pad_id, "sentences": corpus.sentences},
                                 sample_batches(corpus, grouping, batch_size, warmup, steps, args.bucket)), stream)
                for precision in precisions:
                    for framework in frameworks:
                        spec = {"framework": framework, "size": size, "grouping": grouping, "precision": precision,
                                "batch_size": batch_size, "warmup": warmup, "batches": str(batches_path),
                                "threads": threads, "xla": args.xla, "lstm": args.lstm, "encoder_sizes": sizes_dict,
                                "passes": args.passes}
                        result = run_configuration(spec, work, args.timeout)
                        rows.append(Row(size, grouping, precision, framework, steps, batch_size, result))
                        print(f"  {size} {grouping} {precision} {framework}: "
                              + (result["error"] if "error" in result else
                                 f"{result['sentences_per_s']:.1f} sentences/s, {result['characters_per_s']:.0f} "
                                 f"characters/s, first step {result['first_step_s']:.1f} s, peak RSS "
                                 f"{result['peak_rss_mib']:.0f} MiB"), flush=True)
    lines = tables(rows, gpu) + [""] + goals(rows)
    print("\n" + "\n".join(lines))
    print(f"\n(total {time.monotonic() - started:.0f} s)")
    if args.markdown:
        args.markdown.write_text(header + "\n\n" + "\n".join(lines) + "\n", encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps({"header": header, "rows": [dataclasses.asdict(row) for row in rows]},
                                        indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
