#!/usr/bin/env python3
"""The labelling loop through a real Label Studio server, on MSRA: select, annotate, retrain, five rounds.

    python bench/label_studio_loop.py [--quick] [--initial 500] [--step 500] [--rounds 5] [--pool 4000]
                                      [--epochs 2] [--markdown PATH] [--plot PATH]

For each strategy (``uncertainty``: ``albert-ner select --format label-studio`` with the served model;
``random``: a seeded sample) a Label Studio project gets the ``--initial`` sentences and the candidate pool
as tasks (the split of bench/active_learning.py: 500 validation sentences, then the initial set, then the
pool, from the shuffled MSRA training set). The initial tasks are "annotated" by copying MSRA's gold labels
in through Label Studio's API, a first model is trained from scratch on the project's export, and
``albert-ner serve`` serves it as the project's ML backend. Each round then chooses ``--step`` more tasks,
annotates them the same way, and presses Label Studio's training trigger (``POST /api/ml/ID/train``):
the backend fetches the export, retrains warm-started from the served model (the ``model`` channel) and
switches to the new version. The new model's entity F1 on the 500 validation sentences and the round's
wall time (selection, annotation, retrain and switch) are recorded.

Warm start against a cold start: the backend's retrain of each uncertainty round is trained again from
scratch (same export, hyperparameters, seed and so the same held-out split of it). Both jobs evaluate every
``--eval-every`` steps on that held-out split; the table gives the steps each needs to reach the lower of
the two best F1 scores, the "same validation F1", and their wall times. Last, the final model answers one
``/predict`` of 1,000 tasks as Label Studio sends it (Label Studio waits 100 s): its tasks per second.

Needs ``python data/fetch_msra.py`` and ``scripts/setup.sh`` (Label Studio in ``.venv-label-studio``).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "container" / "ner"), str(REPO / "bench"), str(REPO / "tests")]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from active_learning import HYPERPARAMETERS, VALIDATION_SIZE, read_msra, write_jsonl  # noqa: E402
from albert_ner.sentences import Sentence  # noqa: E402
from label_studio_server import TOKEN, LabelStudioServer, free_port, start_label_studio  # noqa: E402

CONFIG = ('<View><Labels name="label" toName="text"><Label value="PER"/><Label value="LOC"/><Label value="ORG"/>'
          '</Labels><Text name="text" value="$text"/></View>')
QUICK = {"initial": 60, "step": 60, "rounds": 2, "pool": 200, "epochs": 1}
#: Tasks in the /predict whose rate is measured: the server's default limit per request.
PREDICT_TASKS = 1000
#: The backend's basic-auth credentials (retraining wants them), which Label Studio's connection sends.
BACKEND_USER, BACKEND_PASSWORD = "studio", "backend-secret"
BACKEND_AUTHORIZATION = "Basic " + base64.b64encode(f"{BACKEND_USER}:{BACKEND_PASSWORD}".encode()).decode()
#: How long a round waits for the backend to serve the retrained model.
RETRAIN_TIMEOUT_SECONDS = 1800


def albert_ner(*arguments: str, environ: dict[str, str] | None = None) -> None:
    subprocess.run([sys.executable, "-m", "albert_ner", *arguments], check=True, env=environ,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def train_job(work: Path, export: Path, hyperparameters: dict[str, str]) -> Path:
    """`train` from scratch on a Label Studio export; returns the model directory."""
    (work / "input" / "data" / "training").mkdir(parents=True)
    os.link(export, work / "input" / "data" / "training" / export.name)
    (work / "input" / "config").mkdir(parents=True)
    (work / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    albert_ner("train", "--base-dir", str(work))
    return work / "model"


def validation_f1(model: Path, validation: Path) -> float:
    with tempfile.NamedTemporaryFile(suffix=".json") as report:
        albert_ner("evaluate", "--model-dir", str(model), str(validation), "--output", report.name)
        scores = json.loads(Path(report.name).read_text(encoding="utf-8"))
        return float(scores["entity_level_strict"]["micro_avg"]["f1"])


def steps_to_reach(history: Path, target: float) -> int | None:
    """The first evaluation step whose F1 reaches ``target``, from a job's training_history.json."""
    evaluations = json.loads(history.read_text(encoding="utf-8"))["evaluations"]
    return next((point["step"] for point in evaluations if point["f1"] >= target - 1e-9), None)


def best_f1(history: Path) -> float:
    return max(point["f1"] for point in json.loads(history.read_text(encoding="utf-8"))["evaluations"])


def annotate(studio: LabelStudioServer, task_ids: dict[str, int], sentences: Sequence[Sentence]) -> None:
    """Copy the gold labels in, as an annotator submitting each task in the editor would."""
    for sentence in sentences:
        text = "".join(sentence.tokens)
        result = [{"from_name": "label", "to_name": "text", "type": "labels",
                   "value": {"start": entity.start, "end": entity.end, "text": text[entity.start:entity.end],
                             "labels": [entity.type]}} for entity in sentence.entities]
        studio.api("POST", f"/api/tasks/{task_ids[text]}/annotations", {"result": result})


def export(studio: LabelStudioServer, project: int, path: Path) -> Path:
    path.write_text(json.dumps(studio.api("GET", f"/api/projects/{project}/export?exportType=JSON"),
                               ensure_ascii=False), encoding="utf-8")
    return path


def backend_health(port: int) -> dict:
    headers = {"Authorization": BACKEND_AUTHORIZATION}
    request = urllib.request.Request(f"http://127.0.0.1:{port}/health", headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def run_strategy(strategy: str, args: argparse.Namespace, studio: LabelStudioServer, work: Path,
                 initial: list[Sentence], pool: list[Sentence], validation: Path,
                 hyperparameters: dict[str, str]) -> list[dict]:
    work.mkdir(parents=True)
    project = studio.api("POST", "/api/projects", {"title": f"MSRA {strategy}", "label_config": CONFIG})["id"]
    texts = ["".join(sentence.tokens) for sentence in initial + pool]
    imported = studio.api("POST", f"/api/projects/{project}/import?return_task_ids=true", [{"text": t} for t in texts])
    task_ids = dict(zip(texts, imported["task_ids"], strict=True))
    started = time.monotonic()
    annotate(studio, task_ids, initial)
    model = train_job(work / "round-0", export(studio, project, work / "export-0.json"), hyperparameters)
    rounds = [{"labelled": len(initial), "f1": validation_f1(model, validation), "seconds": time.monotonic() - started,
               "version": "initial (from scratch)", "model": model}]
    print(f"{strategy:>11} round 0: {len(initial)} labelled, validation F1 {rounds[0]['f1']:.4f}", flush=True)
    port = free_port()
    environ = dict(os.environ, LABEL_STUDIO_URL=studio.url, LABEL_STUDIO_API_KEY=TOKEN,
                   ALBERT_NER_STATE_DIR=str(work / "state"), ALBERT_NER_RUNTIME="tensorflow",
                   SAGEMAKER_MODEL_SERVER_WORKERS="1", BASIC_AUTH_USER=BACKEND_USER, BASIC_AUTH_PASS=BACKEND_PASSWORD,
                   ALBERT_NER_RETRAIN_HYPERPARAMETERS=json.dumps(hyperparameters))
    with open(work / "serve.log", "w") as log:
        server = subprocess.Popen([sys.executable, "-m", "albert_ner", "serve", "--model-dir", str(model), "--port",
                                   str(port), "--host", "127.0.0.1"], env=environ, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                version = backend_health(port)["model_version"]
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit(f"the backend did not start; its log: {work / 'serve.log'}") from None
                time.sleep(0.5)
        ml = studio.api("POST", "/api/ml", {"url": f"http://127.0.0.1:{port}", "project": project,
                                            "auth_method": "BASIC_AUTH", "basic_auth_user": BACKEND_USER,
                                            "basic_auth_pass": BACKEND_PASSWORD})["id"]
        labelled, remaining = list(initial), list(pool)
        chooser = random.Random(args.seed)
        for number in range(1, args.rounds + 1):
            started = time.monotonic()
            if strategy == "random":
                chosen = chooser.sample(remaining, args.step)
            else:
                candidates, picked = work / f"pool-{number}.txt", work / f"chosen-{number}.json"
                candidates.write_text("".join("".join(s.tokens) + "\n" for s in remaining), encoding="utf-8")
                albert_ner("select", "--model-dir", str(backend_model(work, version, model)), "--input",
                           str(candidates), "--budget", str(args.step), "--format", "label-studio", "--output",
                           str(picked))
                wanted = {task["data"]["text"] for task in json.loads(picked.read_text(encoding="utf-8"))}
                chosen = [sentence for sentence in remaining if "".join(sentence.tokens) in wanted]
            selected = time.monotonic()
            annotate(studio, task_ids, chosen)
            annotated = time.monotonic()
            taken = {id(sentence) for sentence in chosen}
            remaining = [sentence for sentence in remaining if id(sentence) not in taken]
            labelled += chosen
            studio.api("POST", f"/api/ml/{ml}/train", {})
            deadline = time.monotonic() + RETRAIN_TIMEOUT_SECONDS
            while (health := backend_health(port))["model_version"] == version:
                if health.get("training", {}).get("state") == "failed":
                    raise SystemExit(f"the retrain failed: {health['training']}")
                if time.monotonic() > deadline:
                    raise SystemExit(f"no new model {RETRAIN_TIMEOUT_SECONDS} s after the trigger: {health}; the "
                                     f"backend's log: {work / 'serve.log'}")
                time.sleep(1)
            version = health["model_version"]
            seconds = time.monotonic() - started
            retrained = backend_model(work, version, model)
            f1 = validation_f1(retrained, validation)
            rounds.append({"labelled": len(labelled), "f1": f1, "seconds": seconds, "version": version,
                           "select": selected - started, "annotate": annotated - selected,
                           "retrain": seconds - (annotated - started), "model": retrained})
            print(f"{strategy:>11} round {number}: {len(labelled)} labelled, validation F1 {f1:.4f}, {seconds:.0f} s "
                  f"(select {selected - started:.0f}, annotate {annotated - selected:.0f}, retrain and switch "
                  f"{rounds[-1]['retrain']:.0f})", flush=True)
            if strategy == "uncertainty":
                rounds[-1]["cold"] = warm_against_cold(work, number, studio, project, hyperparameters,
                                                       rounds[-1]["retrain"])
        rounds[-1]["predict"] = predict_rate(port, texts[:PREDICT_TASKS])
    finally:
        server.terminate()
        server.wait(60)
    return rounds


def predict_rate(port: int, texts: Sequence[str]) -> tuple[int, float]:
    """Tasks per second of one ``/predict`` as Label Studio sends it (which waits 100 s for the answer)."""
    body = json.dumps({"tasks": [{"id": number, "data": {"text": text}} for number, text in enumerate(texts)],
                       "project": "1.0", "label_config": CONFIG, "params": {}}, ensure_ascii=False).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/predict", data=body,
                                     headers={"Content-Type": "application/json"})
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=100) as response:
        answered = len(json.loads(response.read())["results"])
    return answered, answered / (time.monotonic() - started)


def backend_model(work: Path, version: str, initial: Path) -> Path:
    """The directory of the model the backend serves as ``version``."""
    retrained = work / "state" / "models" / version
    return retrained if retrained.is_dir() else initial


def warm_against_cold(work: Path, number: int, studio: LabelStudioServer, project: int,
                      hyperparameters: dict[str, str], warm_seconds: float) -> dict:
    """The round's warm retrain (the backend's, whose history its state directory keeps) against the same job
    from scratch: the steps each needs to reach the lower of their two best held-out F1 scores."""
    warm = work / f"warm-{number}.json"
    warm.write_bytes((work / "state" / "run" / "checkpoints" / "training_history.json").read_bytes())
    started = time.monotonic()
    train_job(work / f"cold-{number}", export(studio, project, work / f"export-{number}.json"), hyperparameters)
    runs = {"warm": (warm, warm_seconds),
            "cold": (work / f"cold-{number}" / "checkpoints" / "training_history.json", time.monotonic() - started)}
    target = min(best_f1(history) for history, _ in runs.values())
    return {kind: {"steps": steps_to_reach(history, target), "seconds": seconds, "best": best_f1(history)}
            for kind, (history, seconds) in runs.items()} | {"target": target}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"a tiny setting to check the script: {QUICK}")
    parser.add_argument("--initial", type=int, default=500)
    parser.add_argument("--step", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pool", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--eval-every", type=int, default=20, help="steps between held-out evaluations")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--plot", type=Path, default=REPO / "bench" / "label_studio_loop.png")
    args = parser.parse_args()
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    if args.step * args.rounds > args.pool:
        parser.error(f"--pool {args.pool} is smaller than --step x --rounds = {args.step * args.rounds}")
    from bench_inference import cpu_description

    print(f"{cpu_description()}; {os.cpu_count()} cores", flush=True)
    corpus = read_msra("train/msra_train.txt")
    order = list(range(len(corpus)))
    random.Random(args.seed).shuffle(order)
    validation_sentences = [corpus[i] for i in order[:VALIDATION_SIZE]]
    initial = [corpus[i] for i in order[VALIDATION_SIZE:VALIDATION_SIZE + args.initial]]
    pool = [corpus[i] for i in order[VALIDATION_SIZE + args.initial:VALIDATION_SIZE + args.initial + args.pool]]
    # The backend serves on TensorFlow here, so the retrains skip the ONNX copies (seconds each).
    hyperparameters = {**HYPERPARAMETERS, "epochs": str(args.epochs), "seed": str(args.seed),
                       "eval_every_steps": str(args.eval_every), "checkpoint_every_steps": "0", "onnx_export": "off"}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="albert-ner-loop-") as temporary:
        work = Path(temporary)
        validation = work / "validation.jsonl"
        write_jsonl(validation, validation_sentences)
        studio = start_label_studio(work / "label-studio")
        try:
            results = {strategy: run_strategy(strategy, args, studio, work / strategy, initial, pool, validation,
                                              hyperparameters)
                       for strategy in ("uncertainty", "random")}
        finally:
            studio.stop()
    report(results, args, time.monotonic() - started)
    return 0


def report(results: dict[str, list[dict]], args: argparse.Namespace, seconds: float) -> None:
    lines = [f"MSRA through Label Studio: {args.initial} initial + {args.step} x {args.rounds} rounds from a pool of "
             f"{args.pool}; {args.epochs} epochs per retrain, warm-started; validation = {VALIDATION_SIZE} MSRA "
             f"training sentences outside the pool; seed {args.seed}; {seconds:.0f} s in all", "",
             "| labelled | uncertainty: validation F1 | uncertainty: round s | random: validation F1 | "
             "random: round s |", "|---:|---:|---:|---:|---:|"]
    for uncertain, chance in zip(results["uncertainty"], results["random"], strict=True):
        lines.append(f"| {uncertain['labelled']:,} | {uncertain['f1']:.4f} | {uncertain['seconds']:.0f} | "
                     f"{chance['f1']:.4f} | {chance['seconds']:.0f} |")
    lines += ["", "Warm start against cold start, uncertainty rounds (held-out split of the export; steps to the "
              "lower of the two best F1 scores):", "",
              "| labelled | target F1 | warm: steps | warm: best F1 | warm: s | cold: steps | cold: best F1 "
              "| cold: s |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for entry in results["uncertainty"][1:]:
        cold = entry["cold"]
        lines.append(f"| {entry['labelled']:,} | {cold['target']:.4f} | {cold['warm']['steps']} | "
                     f"{cold['warm']['best']:.4f} | {cold['warm']['seconds']:.0f} | {cold['cold']['steps']} | "
                     f"{cold['cold']['best']:.4f} | {cold['cold']['seconds']:.0f} |")
    for strategy, rounds in results.items():
        tasks, rate = rounds[-1]["predict"]
        lines.append(f"\n{strategy}: the last model answered a /predict of {tasks:,} tasks at {rate:,.0f} tasks/s")
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n", encoding="utf-8")
    plot(results, args.plot)
    print(f"plot written to {args.plot}")


def plot(results: dict[str, list[dict]], path: Path) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4), layout="constrained")
    scores, times = figure.subplots(1, 2)
    for strategy, rounds in results.items():
        sizes = [entry["labelled"] for entry in rounds]
        scores.plot(sizes, [entry["f1"] for entry in rounds], marker="o", label=strategy)
        times.plot(sizes[1:], [entry["seconds"] for entry in rounds[1:]], marker="o", label=strategy)
    scores.set(xlabel="labelled sentences", ylabel="validation entity F1", title="F1 per round")
    times.set(xlabel="labelled sentences", ylabel="seconds", title="wall time per round (select, annotate, retrain)")
    for axes in (scores, times):
        axes.grid(alpha=0.3)
        axes.legend()
    figure.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
