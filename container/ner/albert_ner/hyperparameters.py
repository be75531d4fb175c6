"""Typed, validated hyperparameters from SageMaker's all-strings ``hyperparameters.json``.

SageMaker passes every hyperparameter as a string, and its callers disagree on the spelling: SDK v3
``ModelTrainer`` sends ``"true"``, ``"null"`` and JSON lists, while SDK v2 ``Estimator`` and the v3 tuner send
``"True"``, ``"None"`` and Python-repr lists (``"['PER', 'LOC']"``). Both are accepted. Keys SageMaker adds
itself (``sagemaker_*``, ``_tuning_objective_metric`` and the like) are ignored; any other unknown key is
rejected with the closest valid name, because a misspelt ``learning_rat`` silently training with the
default is the worst outcome.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import json
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from albert_ner.errors import HyperparameterError
from albert_ner.lexicon import LEXICON_CHOICES
from albert_ner.modeling.albert import ENCODER_SIZES
from albert_ner.readers.spans import OVERLAP_POLICIES

TAG_SCHEMES = ("bio", "bioes", "bmes")
PRECISIONS = ("auto", "float32", "float16", "bfloat16")


def _hp(default: Any, doc: str, *, choices: tuple[str, ...] | None = None,
        minimum: float | None = None, maximum: float | None = None, exclusive_minimum: bool = False) -> Any:
    return field(default=default, metadata={
        "doc": doc, "choices": choices, "minimum": minimum, "maximum": maximum,
        "exclusive_minimum": exclusive_minimum,
    })


@dataclass(frozen=True)
class Hyperparameters:
    """Every knob of a training job, with the default a user gets when the key is absent."""

    # Model
    max_seq_length: int = _hp(128, "Window length in tokens, [CLS] and [SEP] included; longer sentences are "
                              "split into windows, never truncated.", minimum=8, maximum=512)
    encoder_size: str = _hp("tiny", "ALBERT size built from scratch when no pretrained weights are given.",
                            choices=tuple(ENCODER_SIZES))
    num_hidden_layers: int | None = _hp(None, "Override the number of encoder layers of a from-scratch "
                                        "encoder (null: the size's own).", minimum=1, maximum=48)
    pretrained_model: str | None = _hp(None, "The pretrained encoder to fetch and start from: a Hugging Face Hub "
                                       "repository (owner/name[@revision]), an albert_zh archive's short name "
                                       "(see Pretrained models) or an absolute path in the image. Not together "
                                       "with a `pretrained` channel or pretrained_dir.")
    pretrained_dir: str | None = _hp(None, "A pretrained ALBERT directory inside the image, used when no "
                                     "`pretrained` channel is given (null: $ALBERT_NER_PRETRAINED_DIR when "
                                     "the image was built with one, else train from scratch).")
    lstm_units: int = _hp(128, "Units per direction of the BiLSTM above the encoder; 0 removes it.",
                          minimum=0, maximum=4096)
    use_crf: bool = _hp(True, "CRF output layer; false gives the softmax head of the reference code.")
    dropout: float = _hp(0.1, "Dropout between the encoder, the BiLSTM and the tag projection.",
                         minimum=0.0, maximum=0.9)
    token_dropout: float = _hp(0.0, "Share of training characters replaced by [UNK] at each step, so that the "
                               "model learns to tag from context: names in new text are often characters "
                               "it never saw in that role.", minimum=0.0, maximum=0.5)
    lexicon: str | None = _hp(None, "Dictionaries whose words the model sees as features: off, general (jieba's "
                              "349k-word dict.txt), channel (the files of the `lexicon` channel) or both (null: "
                              "both with a `lexicon` channel, else general).", choices=LEXICON_CHOICES)
    tag_scheme: str = _hp("bioes", "Tag scheme the model predicts in.", choices=("bio", "bioes"))
    # Data
    input_tag_scheme: str | None = _hp(None, "Force the tag scheme of CoNLL input files (null: detect).",
                                       choices=TAG_SCHEMES)
    repair_tags: bool = _hp(False, "Fix an I-/M-/E- tag with no opening tag instead of failing (the count "
                            "of fixes is logged).")
    label_attribute: str | None = _hp(None, "The label attribute of a SageMaker Ground Truth manifest (the "
                                      "labelling job's name) when a line holds several (null: the one attribute "
                                      "shaped like named-entity labels).")
    overlapping_entities: str = _hp("error", "Overlapping or duplicate entity spans, which no tag scheme can "
                                    "express: error fails naming both; longest keeps the longest of each "
                                    "overlapping group, first the one that starts first (the count dropped is "
                                    "logged).", choices=OVERLAP_POLICIES)
    utf16_offsets: bool = _hp(False, "Convert offsets counted in UTF-16 code units (browser-based annotators "
                              "with emoji in the text) to characters, in the records of CLUENER, Label Studio "
                              "and brat files whose spans check out only that way; false fails naming them.")
    entity_types: list[str] | None = _hp(None, "Entity types the model must know (null: those in the "
                                         "training data). A type in the data but not in this list fails.")
    validation_split: float = _hp(0.1, "Share of the training data held out for validation when there is no "
                                  "`validation` channel.", minimum=0.0, maximum=0.5, exclusive_minimum=True)
    lower_case: bool = _hp(True, "Lower-case text before the vocabulary lookup (albert_zh vocabularies are "
                           "lower-case).")
    vocab_min_count: int = _hp(1, "Minimum count of a character to enter a vocabulary built from the "
                               "training data (no pretrained vocab).", minimum=1)
    teacher_weight: float = _hp(1.0, "Weight of a `teacher` channel sentence in the loss, against 1 for a gold "
                                "one (times the lowest score of its entities, where the teacher gives scores).",
                                minimum=0.0, maximum=100.0, exclusive_minimum=True)
    teacher_type_mapping: str | None = _hp(None, "The `teacher` channel's entity types renamed to the model's, as "
                                           "TEACHER=TYPE,... (for example PERSON=PER,LOCATION=LOC); a teacher "
                                           "type that is not among the entity types fails, naming it.")
    mlm_steps: int = _hp(0, "Steps of masked-language-model pretraining of the encoder before fine-tuning, on the "
                         "training text and the `unlabelled` channel's (ALBERT's head, tied embeddings; the head is "
                         "dropped after). 0: off.", minimum=0, maximum=1_000_000)
    mlm_mask_rate: float = _hp(0.15, "Share of the characters masked in each pretraining batch (of those, 80% "
                               "become [MASK], 10% a random character, 10% stay).", minimum=0.0, maximum=0.5,
                               exclusive_minimum=True)
    self_training_rounds: int = _hp(0, "Rounds of self-training on the `unlabelled` channel: after training, the "
                                    "model tags that text, keeps the sentences whose every entity scores at least "
                                    "self_training_threshold, and trains on gold plus those for `epochs` more; "
                                    "stops early when a round does not raise validation F1. 0: off.",
                                    minimum=0, maximum=20)
    self_training_threshold: float = _hp(0.9, "The entity score (the model's probability for exactly that entity) "
                                         "every entity of a pseudo-labelled sentence must reach for it to be "
                                         "kept.", minimum=0.0, maximum=1.0)
    self_training_weight: float = _hp(1.0, "Weight of a pseudo-labelled sentence in the loss, against 1 for a gold "
                                      "one (times its lowest entity score).", minimum=0.0, maximum=100.0,
                                      exclusive_minimum=True)
    # Optimisation
    epochs: int = _hp(3, "Passes over the training data.", minimum=1, maximum=1000)
    max_steps: int | None = _hp(None, "Stop after this many optimizer steps (null: run all epochs).", minimum=1)
    batch_size: int = _hp(32, "Global batch size in sentences (windows), split across replicas.",
                          minimum=1, maximum=65536)
    learning_rate: float | None = _hp(None, "Peak AdamW learning rate of the encoder (null: 5e-5 when "
                                      "fine-tuning pretrained weights, 5e-4 for an encoder trained from "
                                      "scratch).", minimum=0.0, maximum=1.0,
                               exclusive_minimum=True)
    head_learning_rate: float = _hp(1e-3, "Peak learning rate of the BiLSTM, projection and CRF: CRF "
                                    "transitions barely move at encoder rates.", minimum=0.0, maximum=1.0,
                                    exclusive_minimum=True)
    warmup_proportion: float = _hp(0.1, "Share of the steps spent warming the learning rate up linearly.",
                                   minimum=0.0, maximum=1.0)
    weight_decay: float = _hp(0.01, "AdamW weight decay (not applied to biases and LayerNorm).",
                              minimum=0.0, maximum=1.0)
    ema_momentum: float | None = _hp(None, "Evaluate and keep an exponential moving average of the weights with "
                                     "this momentum (null: the weights as trained). 0.999 averages about the "
                                     "last 1,000 steps: it smooths a high learning rate's noise, but needs "
                                     "runs of several thousand steps.", minimum=0.0, maximum=0.99999)
    clip_norm: float = _hp(1.0, "Global gradient-norm clipping threshold.", minimum=0.0,
                           exclusive_minimum=True)
    length_grouping: bool = _hp(True, "Batch sentences of similar length together so that short sentences "
                                "are not padded to max_seq_length.")
    mixed_precision: str = _hp("auto", "auto: float16 on GPUs, float32 on CPU.", choices=PRECISIONS)
    seed: int = _hp(42, "Seed of the data split, shuffling and initialisation: a fixed seed repeats a run.")
    # Checkpoints (resume after a spot interruption or a stop)
    checkpoint_every_steps: int = _hp(500, "Save a checkpoint to /opt/ml/checkpoints every N steps (and at each "
                                      "epoch end); 0 saves only at epoch ends.", minimum=0)
    keep_checkpoints: int = _hp(2, "Checkpoints kept; older ones are deleted.", minimum=1, maximum=100)
    # Evaluation and logging
    eval_every_steps: int | None = _hp(None, "Evaluate every N steps as well as at each epoch end.", minimum=1)
    early_stopping_patience: int = _hp(3, "Evaluations without a better validation F1 before stopping; 0 "
                                       "disables early stopping.", minimum=0)
    log_every_steps: int = _hp(50, "Write a progress line every N steps.", minimum=1)
    eval_batch_size: int = _hp(128, "Batch size for evaluation and prediction.", minimum=1)
    onnx_export: str = _hp("dynamic", "The ONNX copies of the model in model/onnx for ONNX Runtime (float32 and "
                           "int8), the int8 copy quantized dynamic (activation ranges per batch) or static "
                           "(calibrated on training sentences); off writes none and the model serves on "
                           "TensorFlow.", choices=("dynamic", "static", "off"))

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):
            _check_range(spec, getattr(self, spec.name))

    def read_options(self) -> dict[str, Any]:
        """How input is read, as :func:`albert_ner.data.read_channel`'s keyword arguments: the job and
        ``albert-ner convert`` read the same way."""
        return {"scheme": self.input_tag_scheme, "repair": self.repair_tags, "label_attribute": self.label_attribute,
                "overlapping_entities": self.overlapping_entities, "utf16_offsets": self.utf16_offsets}

    def encoder_learning_rate(self, pretrained: bool) -> float:
        """``learning_rate``, or the usual peak for the case: fine-tuning needs a rate 10x smaller."""
        if self.learning_rate is not None:
            return self.learning_rate
        return 5e-5 if pretrained else 5e-4

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_strings(cls, raw: Mapping[str, Any]) -> Hyperparameters:
        """Parse SageMaker's hyperparameters (strings in any caller's spelling, or already typed values)."""
        specs = {spec.name: spec for spec in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, raw_value in raw.items():
            if key.startswith(("sagemaker_", "_")):
                continue
            if key not in specs:
                raise HyperparameterError(_unknown_key_message(key, specs))
            values[key] = _parse_value(key, raw_value, _hints()[key])
        return cls(**values)


@typing.no_type_check
def _hints() -> dict[str, Any]:
    return typing.get_type_hints(Hyperparameters)


def _unknown_key_message(key: str, specs: Mapping[str, dataclasses.Field]) -> str:
    close = difflib.get_close_matches(key, list(specs), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(sorted(specs))}"
    return f"unknown hyperparameter {key!r}{hint}"


_NULLS = {"none", "null", ""}
_TRUES = {"true", "1", "yes"}
_FALSES = {"false", "0", "no"}


def _parse_value(key: str, raw: Any, annotation: Any) -> Any:
    """Turn one raw value into ``annotation``'s type, or raise naming the key, the value and the type."""
    base, optional = _unwrap_optional(annotation)
    expected = _describe(base, optional)
    if isinstance(raw, str) and raw.strip().lower() in _NULLS:
        if optional:
            return None
        raise HyperparameterError(f"hyperparameter {key}={raw!r}: expected {expected}, not null")
    if raw is None:
        if optional:
            return None
        raise HyperparameterError(f"hyperparameter {key}=None: expected {expected}")
    try:
        return _convert(raw, base)
    except (ValueError, TypeError, SyntaxError):
        raise HyperparameterError(f"hyperparameter {key}={raw!r}: expected {expected}") from None


def _convert(raw: Any, base: Any) -> Any:
    if base is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUES:
            return True
        if text in _FALSES:
            return False
        raise ValueError(raw)
    if base is int:
        if isinstance(raw, bool):
            raise TypeError(raw)
        if isinstance(raw, int):
            return raw
        number = float(str(raw).strip())
        if not number.is_integer():
            raise ValueError(raw)
        return int(number)
    if base is float:
        if isinstance(raw, bool):
            raise TypeError(raw)
        number = float(str(raw).strip()) if isinstance(raw, str) else float(raw)
        if not math.isfinite(number):
            raise ValueError(raw)
        return number
    if base is str:
        if not isinstance(raw, str):
            raise TypeError(raw)
        return raw
    if typing.get_origin(base) is list:
        items = raw if isinstance(raw, list) else _parse_list(str(raw))
        if not all(isinstance(item, str) for item in items):
            raise TypeError(raw)
        return list(items)
    raise TypeError(f"unsupported hyperparameter type {base}")


def _parse_list(text: str) -> list:
    """JSON (`["PER", "LOC"]`), Python repr (`['PER', 'LOC']`) or a comma-separated list."""
    text = text.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = ast.literal_eval(text)
        if not isinstance(value, list):
            raise ValueError(text)
        return value
    return [item.strip() for item in text.split(",") if item.strip()]


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return members[0], len(members) < len(typing.get_args(annotation))
    return annotation, False


def _describe(base: Any, optional: bool) -> str:
    names = {bool: "a boolean (true/false)", int: "an integer", float: "a number", str: "a string"}
    text = names.get(base, "a list of strings")
    return text + " or null" if optional else text


def _check_range(spec: dataclasses.Field, value: Any) -> None:
    if value is None:
        return
    meta = spec.metadata
    choices = meta.get("choices")
    if choices and value not in choices:
        raise HyperparameterError(
            f"hyperparameter {spec.name}={value!r}: expected one of {', '.join(choices)}")
    low, high = meta.get("minimum"), meta.get("maximum")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        too_low = low is not None and (value <= low if meta.get("exclusive_minimum") else value < low)
        if too_low or (high is not None and value > high):
            lower = f"> {low}" if meta.get("exclusive_minimum") else f">= {low}"
            bounds = " and ".join(part for part in (
                lower if low is not None else "", f"<= {high}" if high is not None else "") if part)
            raise HyperparameterError(f"hyperparameter {spec.name}={value!r}: expected a value {bounds}")


def describe_hyperparameters() -> list[tuple[str, str, Any, str]]:
    """(name, type, default, doc) of every hyperparameter, for the README table and `--help`."""
    hints = _hints()
    return [(spec.name, _describe(*_unwrap_optional(hints[spec.name])), spec.default, spec.metadata["doc"])
            for spec in dataclasses.fields(Hyperparameters)]
