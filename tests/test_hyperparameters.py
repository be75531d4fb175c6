"""Hyperparameters arrive as strings in two SDK dialects; both must parse to the same typed values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from albert_ner.errors import HyperparameterError
from albert_ner.hyperparameters import Hyperparameters, describe_hyperparameters

SDK_V2 = {"use_crf": "True", "max_steps": "None", "entity_types": "['PER', 'LOC', '产品']",
          "learning_rate": "3e-05", "epochs": "2", "sagemaker_program": "train.py",
          "sagemaker_region": '"us-east-1"', "_tuning_objective_metric": "val_f1"}
SDK_V3 = {"use_crf": "true", "max_steps": "null", "entity_types": '["PER", "LOC", "产品"]',
          "learning_rate": "0.00003", "epochs": "2"}


def test_both_sdk_dialects_give_the_same_typed_values() -> None:
    v2, v3 = Hyperparameters.from_strings(SDK_V2), Hyperparameters.from_strings(SDK_V3)
    assert v2 == v3
    assert v2.use_crf is True and v2.max_steps is None and v2.epochs == 2
    assert v2.entity_types == ["PER", "LOC", "产品"]
    assert v2.learning_rate == pytest.approx(3e-5)


def test_defaults_when_nothing_is_given() -> None:
    defaults = Hyperparameters.from_strings({})
    assert defaults == Hyperparameters()
    assert defaults.use_crf and defaults.max_seq_length == 128 and defaults.tag_scheme == "bioes"


@pytest.mark.parametrize("raw, expected", [("false", False), ("False", False), ("0", False), ("TRUE", True)])
def test_boolean_spellings(raw: str, expected: bool) -> None:
    assert Hyperparameters.from_strings({"use_crf": raw}).use_crf is expected


def test_typo_names_the_key_and_the_closest_valid_one() -> None:
    with pytest.raises(HyperparameterError, match=r"'learning_rat'.*did you mean 'learning_rate'"):
        Hyperparameters.from_strings({"learning_rat": "1e-3"})


def test_unrelated_unknown_key_lists_the_valid_keys() -> None:
    with pytest.raises(HyperparameterError, match=r"unknown hyperparameter 'zzz'.*valid keys: .*batch_size"):
        Hyperparameters.from_strings({"zzz": "1"})


@pytest.mark.parametrize("key, value, message", [
    ("epochs", "three", r"epochs='three': expected an integer"),
    ("epochs", "2.5", r"epochs='2.5': expected an integer"),
    ("epochs", "0", r"epochs=0: expected a value >= 1"),
    ("batch_size", "null", r"batch_size='null': expected an integer, not null"),
    ("dropout", "1.5", r"dropout=1.5: expected a value >= 0.0 and <= 0.9"),
    ("learning_rate", "0", r"learning_rate=0.0: expected a value > 0.0"),
    ("learning_rate", "nan", r"learning_rate='nan': expected a number"),
    ("use_crf", "maybe", r"use_crf='maybe': expected a boolean"),
    ("tag_scheme", "bmes", r"tag_scheme='bmes': expected one of bio, bioes"),
    ("entity_types", "[1, 2]", r"entity_types='\[1, 2\]': expected a list of strings"),
])
def test_bad_values_name_the_key_the_value_and_the_expectation(key: str, value: str, message: str) -> None:
    with pytest.raises(HyperparameterError, match=message):
        Hyperparameters.from_strings({key: value})


def test_comma_separated_list_is_accepted() -> None:
    assert Hyperparameters.from_strings({"entity_types": "PER, LOC"}).entity_types == ["PER", "LOC"]


def test_every_hyperparameter_is_documented() -> None:
    rows = describe_hyperparameters()
    assert {name for name, *_ in rows} == set(Hyperparameters().to_dict())
    assert all(doc for *_, doc in rows)


def test_encoder_learning_rate_defaults_to_the_usual_one_for_the_case() -> None:
    defaults = Hyperparameters()
    assert defaults.learning_rate is None
    assert defaults.encoder_learning_rate(pretrained=True) == 5e-5
    assert defaults.encoder_learning_rate(pretrained=False) == 5e-4
    given = Hyperparameters.from_strings({"learning_rate": "2e-5"})
    assert given.encoder_learning_rate(pretrained=False) == given.encoder_learning_rate(pretrained=True) == 2e-5


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.json")),
                         ids=lambda path: path.name)
def test_shipped_configurations_parse(path: Path) -> None:
    """The main job and the recommended GPU run read these files; a typo would fail them only at start."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw and all(isinstance(value, str) for value in raw.values()), "SageMaker passes strings only"
    parsed = Hyperparameters.from_strings(raw)
    assert parsed != Hyperparameters()
