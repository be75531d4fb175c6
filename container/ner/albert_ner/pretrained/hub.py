"""Pretrained ALBERTs from the Hugging Face Hub, fetched with ``huggingface_hub`` into its cache.

The client is used as its users expect, so its environment works unchanged: ``HF_ENDPOINT`` (a mirror, which
users in China regions need), ``HF_TOKEN`` (private and gated repositories), ``HF_HUB_OFFLINE`` (no request at
all: the snapshot must be in the cache) and ``HF_HOME`` / ``HF_HUB_CACHE`` (where the cache is). Only the files
the encoder needs are fetched: ``config.json``, ``vocab.txt`` (the Hub's Chinese ALBERTs are BERT WordPiece
vocabularies, whatever their tokenizer_config.json says), the model card ``README.md`` (its licence), and one
weights file: ``model.safetensors`` when the repository has it, else ``pytorch_model.bin``.

The client downloads each file to a temporary name and moves it into the cache when its size is right; on
top of that the weights are checked against the Hub's etag (the sha256 of an LFS file, the git blob id of a
small one) and a file that does not match is removed from the cache. A revision pinned to a commit that is
already cached is served without a request.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
from pathlib import Path

import httpx2
import huggingface_hub
from huggingface_hub import constants, errors
from huggingface_hub.repocard import metadata_load

from albert_ner.errors import CheckpointError
from albert_ner.pretrained.checkpoint import TRANSFORMERS_WEIGHTS
from albert_ner.pretrained.downloads import sha256_of
from albert_ner.redaction import redact_url, user_info

log = logging.getLogger(__name__)

NEEDED_FILES = ("config.json", "vocab.txt")
_CARD = "README.md"
_COMMIT = re.compile(r"[0-9a-f]{40}")


@dataclasses.dataclass(frozen=True)
class HubSnapshot:
    directory: Path
    commit: str
    weights_file: str
    weights_sha256: str
    license: str | None


def fetch_from_hub(name: str, repo_id: str, revision: str) -> HubSnapshot:
    """The cached snapshot of ``repo_id`` at ``revision``, downloading what is missing; ``name`` is the user's
    spelling, repeated in every error together with what to do."""
    where = f"pretrained_model={name!r}"
    if user_info(constants.ENDPOINT):
        raise CheckpointError(f"{where}: HF_ENDPOINT={redact_url(constants.ENDPOINT)!r} carries a user name and "
                              "password, which albert-ner does not send: give the mirror's token in HF_TOKEN")
    try:
        directory = _cached(repo_id, revision) if (constants.is_offline_mode() or _COMMIT.fullmatch(revision)) \
            else None
        if directory is None and constants.is_offline_mode():
            raise CheckpointError(f"{where}: HF_HUB_OFFLINE is set and {repo_id}@{revision} is not in the Hugging "
                                  f"Face cache {constants.HF_HUB_CACHE}: run once with network access and the same "
                                  "HF_HOME/HF_HUB_CACHE, or unset HF_HUB_OFFLINE")
        if directory is None:
            log.info("pretrained_model %s: fetching %s@%s from %s into %s", name, repo_id, revision,
                     constants.ENDPOINT, constants.HF_HUB_CACHE)
            info = huggingface_hub.HfApi().model_info(repo_id, revision=revision)
            available = {sibling.rfilename for sibling in info.siblings or []}
            weights = next((file for file in TRANSFORMERS_WEIGHTS if file in available), None)
            missing = [file for file in NEEDED_FILES if file not in available]
            if weights is None or missing:
                wanted = missing + ([] if weights else [" or ".join(TRANSFORMERS_WEIGHTS)])
                raise CheckpointError(f"{where}: the repository {repo_id}@{revision} has no {', '.join(wanted)}; "
                                      f"it has {', '.join(sorted(available)) or 'no files'}: it is not a "
                                      "transformers ALBERT this job can load")
            patterns = [*NEEDED_FILES, weights, _CARD]
            directory = Path(huggingface_hub.snapshot_download(repo_id, revision=revision, allow_patterns=patterns))
    except errors.GatedRepoError as error:
        raise CheckpointError(f"{where}: {repo_id} is gated: accept its terms on its page on the Hub, then give "
                              "the job a token of that account in HF_TOKEN") from error
    except errors.RevisionNotFoundError as error:
        raise CheckpointError(f"{where}: {repo_id} has no revision {revision!r}: give an existing branch, tag or "
                              "commit after the @") from error
    except errors.RepositoryNotFoundError as error:
        raise CheckpointError(f"{where}: no repository {repo_id} on {constants.ENDPOINT} (or it is private and "
                              "HF_TOKEN is missing or lacks access): check the name, HF_ENDPOINT and HF_TOKEN"
                              ) from error
    except errors.LocalEntryNotFoundError as error:
        raise CheckpointError(f"{where}: {repo_id}@{revision} is neither reachable on {constants.ENDPOINT} nor "
                              f"complete in the cache {constants.HF_HUB_CACHE}: check the network and HF_ENDPOINT "
                              f"({_first_line(error)})") from error
    except (OSError, errors.HfHubHTTPError) as error:
        raise CheckpointError(f"{where}: downloading {repo_id}@{revision} from {constants.ENDPOINT} failed: "
                              f"{_first_line(error)}. Nothing partial was kept in the cache; run the job again "
                              "(check HF_ENDPOINT if it keeps failing)") from error
    except httpx2.HTTPError as error:  # the client's transport: connection refused, reset, timed out
        raise CheckpointError(f"{where}: cannot reach {constants.ENDPOINT}: {_first_line(error)}; check the "
                              "network and HF_ENDPOINT, or set HF_HUB_OFFLINE=1 with a warm cache") from error
    return _verified(where, repo_id, directory)


def _cached(repo_id: str, revision: str) -> Path | None:
    """The complete cached snapshot, if there is one, found without any request."""
    for weights in TRANSFORMERS_WEIGHTS:
        try:
            directory = Path(huggingface_hub.snapshot_download(
                repo_id, revision=revision, allow_patterns=[*NEEDED_FILES, weights, _CARD], local_files_only=True))
        except (errors.LocalEntryNotFoundError, errors.IncompleteSnapshotError):
            return None
        if all((directory / file).is_file() for file in (*NEEDED_FILES, weights)):
            return directory
    return None


def _verified(where: str, repo_id: str, directory: Path) -> HubSnapshot:
    weights = next((file for file in TRANSFORMERS_WEIGHTS if (directory / file).is_file()), None)
    missing = [file for file in NEEDED_FILES if not (directory / file).is_file()]
    if weights is None or missing:
        raise CheckpointError(f"{where}: the cached snapshot {directory} lacks "
                              f"{', '.join(missing + ([] if weights else ['weights']))}")
    blob = Path(os.path.realpath(directory / weights))
    sha256 = sha256_of(blob)
    expected = blob.name  # the cache names each blob by its etag
    found = sha256 if len(expected) == 64 else _git_blob_id(blob) if len(expected) == 40 else expected
    if found != expected:
        blob.unlink()
        (directory / weights).unlink(missing_ok=True)
        raise CheckpointError(f"{where}: {weights} of {repo_id} does not match the Hub's etag {expected} (found "
                              f"{found}); it was removed from the cache: run the job again")
    card = directory / _CARD
    log.info("%s: snapshot %s (commit %s), %s of %.1f MiB, sha256 %s", where, directory,
             directory.name, weights, blob.stat().st_size / 1024 ** 2, sha256)
    return HubSnapshot(directory=directory, commit=directory.name, weights_file=weights, weights_sha256=sha256,
                       license=_card_license(card) if card.is_file() else None)


def _git_blob_id(path: Path) -> str:
    """The id git (and the Hub's etag) gives a small, non-LFS file."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    digest.update(path.read_bytes())
    return digest.hexdigest()


def _card_license(card: Path) -> str | None:
    try:
        metadata = metadata_load(card) or {}
    except Exception as error:  # noqa: BLE001 - a malformed card must not stop training; say so and go on
        log.warning("model card %s has unreadable metadata (%s): its licence is unknown", card, error)
        return None
    value = metadata.get("license")
    return str(value) if value is not None else None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
