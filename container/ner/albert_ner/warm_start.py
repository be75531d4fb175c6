"""Continuing from a model `train` wrote before: the ``model`` channel.

A labelling round adds a few hundred sentences to what the last model learnt from; starting the next model
from the last one's weights, rather than from the pretrained encoder, gets it to the same validation F1 in
fewer steps. The channel holds an albert-ner model directory, as a directory or as the ``model.tar.gz``
SageMaker packs it into (the previous job's ``ModelArtifacts``, given as the channel's S3 URI, as
SageMaker's own algorithms take incremental training). The archive is unpacked with the checks of
:mod:`albert_ner.pretrained.archives`.

The model fixes what its weights were trained for: the encoder and head architecture, the vocabulary (and
case folding), the tag scheme and entity types, and the lexicon's features. Training data with an entity
type the model has no tags for, an ``entity_types`` hyperparameter naming other types, or a pretrained
encoder given as well is an error naming the conflict. The hyperparameters of what the model fixes
(``encoder_size``, ``num_hidden_layers``, ``lstm_units``, ``use_crf``, ``tag_scheme``, ``lower_case``,
``lexicon``, ``vocab_min_count``) do not apply, and the log says what the model's are. Learning rates,
epochs and the rest apply as given; the rates are the fine-tuning ones, as with a pretrained encoder.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from albert_ner.errors import AlbertNerError, DataError, HyperparameterError, ModelDirectoryError
from albert_ner.model_directory import CONFIG_FILE, ModelDescription, model_version, read_description
from albert_ner.pretrained.archives import extract_archive

if TYPE_CHECKING:
    from albert_ner.modeling.tagger import AlbertTagger

log = logging.getLogger("albert_ner.training")

MODEL_CHANNEL = "model"
#: What SageMaker names a job's packed model directory.
MODEL_ARCHIVE = "model.tar.gz"


@dataclass
class WarmStart:
    """The model a job continues from: its directory (unpacked if it came packed) and what it says."""

    directory: Path
    description: ModelDescription
    version: str
    _unpacked: tempfile.TemporaryDirectory | None = field(default=None, repr=False)

    def describe(self) -> str:
        vocab, tags = self.description.tokenizer.vocab, self.description.label_map.tags
        return (f"albert-ner model {self.version} from the `{MODEL_CHANNEL}` channel ({len(vocab)} tokens, tags "
                f"{' '.join(tags)})")

    def check_entity_types(self, found: Sequence[str], requested: Sequence[str] | None) -> None:
        """The data's entity types (and an ``entity_types`` hyperparameter) must be the model's own."""
        types = set(self.description.label_map.entity_types)
        unknown = sorted(set(found) - types)
        if unknown:
            raise DataError(f"the training data has entity types the `{MODEL_CHANNEL}` channel's model has no tags "
                            f"for: {', '.join(unknown)} (it predicts {', '.join(sorted(types))}); train from the "
                            f"pretrained encoder instead to learn new types")
        if requested is not None and set(requested) != types:
            raise HyperparameterError(f"hyperparameter entity_types={list(requested)!r}: the `{MODEL_CHANNEL}` "
                                      f"channel's model predicts {sorted(types)}; leave entity_types unset")

    def fixed_settings(self) -> str:
        """What the model fixes, in the hyperparameters' names, for the log."""
        tagger = self.description.tagger_config
        albert = tagger.get("albert_config", {})
        lexicon = self.description.lexicon
        return (f"lstm_units={tagger.get('lstm_units')}, use_crf={tagger.get('use_crf')}, encoder hidden "
                f"{albert.get('hidden_size')} x {albert.get('num_hidden_layers')} layers, "
                f"tag_scheme={self.description.label_map.scheme}, lower_case={self.description.tokenizer.lower_case}, "
                f"lexicon={'off' if lexicon is None else lexicon.describe()}")


def find_warm_start(channel: Path) -> WarmStart:
    """The model in the ``model`` channel: a model directory at the channel's top or one level down, or a
    ``model.tar.gz`` there (unpacked into a temporary directory that lives as long as the WarmStart)."""
    unpacked = None
    directory = _model_directory(channel)
    if directory is None:
        archives = sorted(channel.rglob(MODEL_ARCHIVE))
        if not archives:
            raise DataError(f"the `{MODEL_CHANNEL}` channel holds neither a model directory ({CONFIG_FILE} with "
                            f"the model's other files) nor a {MODEL_ARCHIVE}", channel)
        if len(archives) > 1:
            raise DataError(f"the `{MODEL_CHANNEL}` channel holds {len(archives)} {MODEL_ARCHIVE} files: give one "
                            "model", channel)
        unpacked = tempfile.TemporaryDirectory(prefix="albert-ner-model-channel-")
        destination = Path(unpacked.name) / "model"
        try:
            extract_archive(archives[0], destination)
        except AlbertNerError as error:
            raise DataError(f"the `{MODEL_CHANNEL}` channel's archive cannot be unpacked: {error}", archives[0]
                            ) from None
        directory = _model_directory(destination)
        if directory is None:
            raise DataError(f"the archive holds no albert-ner model ({CONFIG_FILE} is missing)", archives[0])
    try:
        description = read_description(directory)
        version = model_version(directory)
    except ModelDirectoryError as error:
        raise DataError(f"the `{MODEL_CHANNEL}` channel's model directory: {error}", directory) from None
    warm = WarmStart(directory, description, version, unpacked)
    log.info("warm start: %s; the model fixes %s", warm.describe(), warm.fixed_settings())
    return warm


def _model_directory(root: Path) -> Path | None:
    if (root / CONFIG_FILE).is_file():
        return root
    below = [path.parent for path in sorted(root.glob(f"*/{CONFIG_FILE}"))]
    return below[0] if len(below) == 1 else None


def warm_started_tagger(warm: WarmStart, dropout: float) -> AlbertTagger:
    """The model's Keras tagger with its weights, to train on (with the job's ``dropout``)."""
    from albert_ner.runtimes.tensorflow_runtime import load_tagger

    description = dataclasses.replace(warm.description,
                                      tagger_config={**warm.description.tagger_config, "dropout": dropout})
    try:
        model = load_tagger(warm.directory, description)
    except ModelDirectoryError as error:
        raise DataError(f"the `{MODEL_CHANNEL}` channel's model directory: {error}", warm.directory) from None
    log.info("warm start: the tagger's weights come from %s", warm.version)
    return model
