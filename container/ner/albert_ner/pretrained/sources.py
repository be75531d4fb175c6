"""Where the pretrained encoder comes from: the ``pretrained`` channel, ``pretrained_model`` or the image.

``pretrained_model`` names an encoder the job fetches itself, so that script mode from git (which cannot
carry weights) and plain ``train`` jobs need no channel:

* a Hugging Face Hub repository, ``owner/name`` with an optional ``@revision`` (``hub.py``);
* a published albert_zh archive by its short name (:data:`ARCHIVES`): brightmart's zips, and Google's
  tarballs under the ``google/`` prefix. ``ALBERT_NER_ARCHIVE_ENDPOINT`` replaces their host
  (``https://storage.googleapis.com``) with a mirror or an internal copy that keeps the same paths;
* a directory inside the image (an absolute or ``./`` path), like ``pretrained_dir``.

Archives are downloaded (``downloads.py``), unpacked safely (``archives.py``) and kept unpacked in
``ALBERT_NER_CACHE_DIR`` (default ``~/.cache/albert-ner``); a cached one is used without any request. Each
source also says where the weights came from (:class:`PretrainedSource.provenance`), which the job logs and
writes into ``model/model_config.json``.
"""

from __future__ import annotations

import dataclasses
import difflib
import glob
import json
import logging
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from albert_ner.errors import CheckpointError, HyperparameterError
from albert_ner.files import locked, replacing
from albert_ner.pretrained import hub
from albert_ner.pretrained.archives import extract_archive
from albert_ner.pretrained.checkpoint import TF1, find_pretrained
from albert_ner.pretrained.downloads import download, sha256_of
from albert_ner.redaction import redact_url, user_info

log = logging.getLogger(__name__)

ARCHIVE_HOST = "https://storage.googleapis.com"
_MANIFEST = ".albert-ner-source.json"


@dataclasses.dataclass(frozen=True)
class Archive:
    """One published albert_zh download. ``sha256`` is None: neither project publishes digests."""

    path: str  # on ARCHIVE_HOST
    description: str
    sha256: str | None = None


#: Short name -> archive, as albert_zh's README and google-research/albert list them (liveness unverified).
ARCHIVES = {
    "albert_tiny_zh": Archive("/albert_zh/albert_tiny.zip", "brightmart albert_tiny_zh (4 layers, hidden 312)"),
    "albert_tiny_489k": Archive("/albert_zh/albert_tiny_489k.zip", "brightmart albert_tiny_zh after 489k steps"),
    "albert_base_zh": Archive("/albert_zh/albert_base_zh.zip", "brightmart albert_base_zh (12 layers, hidden 768)"),
    "albert_base_zh_additional_36k_steps": Archive("/albert_zh/albert_base_zh_additional_36k_steps.zip",
                                                   "brightmart albert_base_zh trained 36k steps more"),
    "albert_large_zh": Archive("/albert_zh/albert_large_zh.zip", "brightmart albert_large_zh (24 layers, 1024)"),
    "albert_xlarge_zh_177k": Archive("/albert_zh/albert_xlarge_zh_177k.zip", "brightmart albert_xlarge_zh, 177k steps"),
    "albert_xlarge_zh_183k": Archive("/albert_zh/albert_xlarge_zh_183k.zip", "brightmart albert_xlarge_zh, 183k steps"),
    "albert_tiny_zh_google": Archive("/albert_zh/albert_tiny_zh_google.zip",
                                     "brightmart albert_tiny in Google's layout"),
    "albert_small_zh_google": Archive("/albert_zh/albert_small_zh_google.zip",
                                      "brightmart albert_small in Google's layout (6 layers, 384)"),
    "google/albert_base_zh": Archive("/albert_models/albert_base_zh.tar.gz", "Google albert_base_zh (relu)"),
    "google/albert_large_zh": Archive("/albert_models/albert_large_zh.tar.gz", "Google albert_large_zh (relu)"),
    "google/albert_xlarge_zh": Archive("/albert_models/albert_xlarge_zh.tar.gz", "Google albert_xlarge_zh (relu)"),
    "google/albert_xxlarge_zh": Archive("/albert_models/albert_xxlarge_zh.tar.gz",
                                        "Google albert_xxlarge_zh (relu)"),
}
# Hub ids as the Hub allows them; "google/albert_*_zh" is kept for Google's archives above.
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_GOOGLE_ARCHIVE = re.compile(r"google/albert_\w+_zh")
# Licences whose terms reach beyond attribution: worth a warning before a model is trained and shipped.
_LICENCES_TO_WARN = re.compile(r"gpl|agpl|lgpl|cc-by-nc|cc-by-sa|cc-by-nd|openrail|other|unknown|llama",
                               re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class PretrainedSource:
    """A local directory laid out like the ``pretrained`` channel, and what is known about where it came from."""

    directory: Path
    origin: dict[str, Any]

    def provenance(self) -> dict[str, Any]:
        """``origin`` plus the weights file and its sha256, the record model_config.json keeps."""
        files = find_pretrained(self.directory)
        weights = Path(files.weights)
        if files.layout == TF1:
            data_files = sorted(weights.parent.glob(glob.escape(weights.name) + ".data-*"))
            weights = data_files[0]
        record = dict(self.origin)
        record.setdefault("weights_file", weights.name)
        if "weights_sha256" not in record:
            record["weights_sha256"] = sha256_of(weights)
        return record


def choose_pretrained(channel: Path | None, pretrained_model: str | None, pretrained_dir: str | None,
                      baked: Path | None, environ: Mapping[str, str]) -> PretrainedSource | None:
    """The one source the job uses: the channel, else ``pretrained_model``, else ``pretrained_dir``, else the
    image's baked directory. Giving more than one of the first three is an error naming them."""
    given = [(label, value) for label, value in (
        ("the `pretrained` channel", channel), (f"hyperparameter pretrained_model={pretrained_model!r}",
                                                pretrained_model),
        (f"hyperparameter pretrained_dir={pretrained_dir!r}", pretrained_dir)) if value]
    if len(given) > 1:
        raise HyperparameterError(f"pretrained weights given twice: {given[0][0]} and {given[1][0]}; give one")
    if channel is not None:
        return PretrainedSource(channel, {"source": "channel", "path": str(channel)})
    if pretrained_model:
        return resolve_pretrained_model(pretrained_model, environ)
    if pretrained_dir:
        return PretrainedSource(Path(pretrained_dir), {"source": "directory", "path": pretrained_dir})
    if baked is not None:
        return PretrainedSource(baked, {"source": "image", "path": str(baked)})
    return None


def resolve_pretrained_model(name: str, environ: Mapping[str, str]) -> PretrainedSource:
    """Fetch (or find in the cache) the encoder ``name`` denotes, as :func:`choose_pretrained` describes."""
    name = name.strip()
    if name.startswith(("/", "./", "../", "~")):
        directory = Path(name).expanduser()
        if not directory.is_dir():
            raise CheckpointError(f"pretrained_model={name!r}: no such directory in the image")
        return PretrainedSource(directory, {"source": "directory", "pretrained_model": name, "path": name})
    if name in ARCHIVES:
        return _archive_source(name, ARCHIVES[name], environ)
    repo_id, _, revision = name.partition("@")
    if _HUB_ID.fullmatch(repo_id) and not _GOOGLE_ARCHIVE.fullmatch(repo_id):
        return _hub_source(name, repo_id, revision or "main")
    close = difflib.get_close_matches(name, list(ARCHIVES), n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise HyperparameterError(f"hyperparameter pretrained_model={name!r}: not a known albert_zh archive (known: "
                              f"{', '.join(ARCHIVES)}), a Hugging Face Hub repository (owner/name[@revision]) or "
                              f"an absolute path.{hint}")


def _hub_source(name: str, repo_id: str, revision: str) -> PretrainedSource:
    snapshot = hub.fetch_from_hub(name, repo_id, revision)
    _log_licence(name, snapshot.license)
    return PretrainedSource(snapshot.directory, {
        "source": "huggingface_hub", "pretrained_model": name, "endpoint": redact_url(hub.constants.ENDPOINT),
        "repository": repo_id, "revision": revision, "commit": snapshot.commit,
        "weights_file": snapshot.weights_file, "weights_sha256": snapshot.weights_sha256,
        "license": snapshot.license})


def cache_dir(environ: Mapping[str, str]) -> Path:
    """``ALBERT_NER_CACHE_DIR``, else ``$XDG_CACHE_HOME/albert-ner``, else ``~/.cache/albert-ner``."""
    configured = environ.get("ALBERT_NER_CACHE_DIR")
    if configured:
        return Path(configured)
    return Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "albert-ner"


def archive_url(archive: Archive, environ: Mapping[str, str]) -> str:
    """The archive's URL on ``ALBERT_NER_ARCHIVE_ENDPOINT`` (a mirror keeping the original paths), or the original."""
    host = environ.get("ALBERT_NER_ARCHIVE_ENDPOINT") or ARCHIVE_HOST
    if user_info(host):
        raise CheckpointError(f"ALBERT_NER_ARCHIVE_ENDPOINT={redact_url(host)!r} carries a user name and password, "
                              "which albert-ner does not send: give a mirror that needs no credentials (an "
                              "S3 VPC endpoint, a presigned or internal URL)")
    return host.rstrip("/") + archive.path


def _archive_source(name: str, archive: Archive, environ: Mapping[str, str]) -> PretrainedSource:
    url = archive_url(archive, environ)
    root = cache_dir(environ)
    entry = name.replace("/", "--")
    directory = root / entry
    what = f"pretrained_model={name!r}"
    # One process at a time per cache entry: parallel jobs sharing the cache volume wait for the first
    # one's download and then reuse it, instead of writing into each other's partial file.
    with locked(root / "locks" / f"{entry}.lock", what):
        origin = _verified_manifest(directory, what)
        if origin is not None:
            log.info("pretrained_model %s: unpacked copy in the cache %s (downloaded from %s; every file's sha256 "
                     "checked)", name, directory, origin.get("url"))
        else:
            downloaded = root / "downloads" / f"{entry}--{archive.path.rsplit('/', 1)[1]}"
            origin = _download_and_unpack(url, archive, downloaded, directory, what)
    log.warning("pretrained_model %s: the archive carries no licence file; check the terms of its publisher "
                "(https://github.com/brightmart/albert_zh, https://github.com/google-research/albert) before "
                "shipping a model trained from it", name)
    return PretrainedSource(directory, {**origin, "pretrained_model": name})


def _download_and_unpack(url: str, archive: Archive, downloaded: Path, directory: Path, what: str) -> dict[str, Any]:
    """Download the archive, unpack it into ``directory`` with a manifest of its origin and of every file's
    sha256; the archive itself is removed."""
    log.info("%s: downloading %s into %s", what, redact_url(url), downloaded.parent.parent)
    download(url, downloaded, what, archive.sha256)
    archive_sha256 = sha256_of(downloaded)
    origin = {"source": "archive", "url": redact_url(url), "revision": f"sha256:{archive_sha256}",
              "archive_sha256": archive_sha256, "license": None}
    try:
        with replacing(directory) as unpacked:
            extract_archive(downloaded, unpacked)
            find_pretrained(unpacked)  # a download that is not an ALBERT fails here, not half-way into training
            files = {path.relative_to(unpacked).as_posix(): sha256_of(path)
                     for path in sorted(unpacked.rglob("*")) if path.is_file()}
            (unpacked / _MANIFEST).write_text(json.dumps({**origin, "files": files}, indent=2) + "\n",
                                              encoding="utf-8")
    except CheckpointError as error:
        downloaded.unlink()
        raise CheckpointError(f"{what}: {redact_url(url)}: {error}") from error
    downloaded.unlink()
    return origin


def _verified_manifest(directory: Path, what: str) -> dict[str, Any] | None:
    """The origin recorded in a cache entry whose files all still have the sha256 its manifest records;
    None (and the entry removed, saying why) when there is no entry or it cannot be trusted."""
    manifest = directory / _MANIFEST
    if not manifest.is_file():
        return None
    try:
        recorded = json.loads(manifest.read_text(encoding="utf-8"))
        problem = next(filter(None, (_file_problem(directory, name, digest)
                                     for name, digest in recorded["files"].items())), None)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as error:
        problem = f"{_MANIFEST} unreadable or without file digests ({type(error).__name__})"
    if problem is not None:
        log.warning("%s: the cached copy in %s cannot be trusted (%s); downloading it again", what, directory,
                    problem)
        shutil.rmtree(directory)
        return None
    recorded.pop("files")
    return recorded


def _file_problem(directory: Path, name: str, sha256: str) -> str | None:
    """What is wrong with the cached file ``directory/name`` that should have ``sha256``, or None."""
    if not (directory / name).is_file():
        return f"{name}: missing"
    return None if sha256_of(directory / name) == sha256 else f"{name}: sha256 differs"


def _log_licence(name: str, license_id: str | None) -> None:
    if license_id is None:
        log.warning("pretrained_model %s: its model card states no licence; check the repository's terms before "
                    "shipping a model trained from it", name)
    elif _LICENCES_TO_WARN.search(license_id):
        log.warning("pretrained_model %s is published under licence %s: its terms may extend to the models you "
                    "train from it and ship; check them", name, license_id)
    else:
        log.info("pretrained_model %s: licence %s", name, license_id)


def copy_pretrained(source: PretrainedSource, destination: Path) -> None:
    """Lay ``source`` out in ``destination`` as the ``pretrained`` channel expects (for ``albert-ner download``).

    ``destination`` must be absent or empty: nothing is overwritten. Cache symlinks are followed.
    """
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise CheckpointError(f"{destination}: exists and is not an empty directory; choose a new one")
    folder = Path(find_pretrained(source.directory).config_path).parent
    with replacing(destination) as temporary:
        shutil.copytree(folder, temporary, symlinks=False, ignore=shutil.ignore_patterns(".*"))
        (temporary / "provenance.json").write_text(json.dumps(source.provenance(), indent=2) + "\n",
                                                   encoding="utf-8")
