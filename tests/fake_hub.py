"""A Hugging Face Hub on 127.0.0.1 speaking the requests the real ``huggingface_hub`` client makes.

* ``GET /api/models/{repo}/revision/{rev}``: model info (``sha``, ``siblings``, ``cardData``);
* ``GET /api/models/{repo}/tree/{rev}``: the file listing (``oid``, ``size``, ``lfs.sha256`` for LFS files);
* ``HEAD``/``GET /{repo}/resolve/{rev}/{file}``: ``X-Repo-Commit``, ``ETag`` (git blob id), ``X-Linked-Etag``
  and ``X-Linked-Size`` for LFS files (the sha256), ``Content-Length``, and ``Range`` requests.

Errors come the way the Hub sends them: 404 with ``X-Error-Code: RepoNotFound`` or ``RevisionNotFound``, 401
with ``GatedRepo`` for a gated repository without a token. ``faults`` breaks one file's download: "truncate"
sends half of it with an honest short Content-Length, "die" sends half and then stops the whole server,
"corrupt" flips the last byte (size and etag as announced).
Every request is counted in ``requests``.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

LFS_SUFFIXES = (".safetensors", ".bin")
SAMPLE_TRAIN = Path(__file__).resolve().parents[1] / "data" / "sample" / "train.txt"


@dataclass
class Repository:
    files: dict[str, bytes]
    commit: str = "0123456789abcdef0123456789abcdef01234567"
    branches: tuple[str, ...] = ("main",)
    gated: bool = False


@dataclass
class FakeHub:
    repositories: dict[str, Repository] = field(default_factory=dict)
    faults: dict[str, str] = field(default_factory=dict)  # file name -> "truncate" | "die" | "corrupt"
    requests: list[str] = field(default_factory=list)

    def start(self) -> str:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_HEAD(self) -> None:
                hub._handle(self, body=False)

            def do_GET(self) -> None:
                hub._handle(self, body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, request: BaseHTTPRequestHandler, body: bool) -> None:
        self.requests.append(f"{request.command} {request.path}")
        path = unquote(urlparse(request.path).path)
        if path.startswith("/api/models/"):
            rest = path[len("/api/models/"):]
            for kind in ("/revision/", "/tree/"):
                if kind in rest:
                    repo_id, revision = rest.split(kind, 1)
                    repository = self._repository(request, repo_id, revision)
                    if repository is not None:
                        self._json(request, self._info(repo_id, repository) if kind == "/revision/"
                                   else self._tree(repository))
                    return
        elif "/resolve/" in path:
            repo_id, rest = path.lstrip("/").split("/resolve/", 1)
            revision, file_name = rest.split("/", 1)
            repository = self._repository(request, repo_id, revision)
            if repository is None:
                return
            if file_name not in repository.files:
                self._error(request, 404, "EntryNotFound")
            elif repository.gated and not request.headers.get("Authorization"):
                self._error(request, 401, "GatedRepo", "Access to model is restricted. You must have access.")
            else:
                self._file(request, repository, file_name, body)
            return
        self._error(request, 404, None)

    def _repository(self, request: BaseHTTPRequestHandler, repo_id: str, revision: str) -> Repository | None:
        repository = self.repositories.get(repo_id)
        if repository is None:
            self._error(request, 401, "RepoNotFound", "Repository not found")
            return None
        if revision not in repository.branches and revision != repository.commit:
            self._error(request, 404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return None
        return repository

    @staticmethod
    def _info(repo_id: str, repository: Repository) -> dict:
        return {"id": repo_id, "modelId": repo_id, "sha": repository.commit, "private": False,
                "gated": "manual" if repository.gated else False,
                "siblings": [{"rfilename": name} for name in sorted(repository.files)]}

    @staticmethod
    def _tree(repository: Repository) -> list[dict]:
        entries = []
        for name, data in sorted(repository.files.items()):
            entry = {"type": "file", "path": name, "size": len(data), "oid": _git_blob_id(data)}
            if name.endswith(LFS_SUFFIXES):
                entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
            entries.append(entry)
        return entries

    def _file(self, request: BaseHTTPRequestHandler, repository: Repository, name: str, body: bool) -> None:
        data = repository.files[name]
        start = 0
        ranged = request.headers.get("Range")
        if ranged and ranged.startswith("bytes=") and body:
            start = int(ranged[len("bytes="):].split("-")[0])
        fault = self.faults.get(name) if body else None
        sent = data[start:]
        if fault == "truncate":
            sent = sent[: len(sent) // 2]
        elif fault == "corrupt":
            sent = sent[:-1] + bytes([sent[-1] ^ 0xFF])
        request.send_response(206 if start else 200)
        request.send_header("X-Repo-Commit", repository.commit)
        request.send_header("ETag", f'"{_git_blob_id(data)}"')
        if name.endswith(LFS_SUFFIXES):
            request.send_header("X-Linked-Etag", f'"{hashlib.sha256(data).hexdigest()}"')
            request.send_header("X-Linked-Size", str(len(data)))
        if start:
            request.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        request.send_header("Content-Length", str(len(data) - start if fault == "die" else len(sent)))
        request.send_header("Accept-Ranges", "bytes")
        request.end_headers()
        if not body:
            return
        if fault == "die":
            request.wfile.write(sent[: len(sent) // 2])
            request.wfile.flush()
            threading.Thread(target=self.stop, daemon=True).start()
            request.close_connection = True
            return
        request.wfile.write(sent)

    @staticmethod
    def _json(request: BaseHTTPRequestHandler, value) -> None:
        data = json.dumps(value).encode()
        request.send_response(200)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(data)

    @staticmethod
    def _error(request: BaseHTTPRequestHandler, status: int, code: str | None, message: str = "") -> None:
        request.send_response(status)
        if code:
            request.send_header("X-Error-Code", code)
        if message:
            request.send_header("X-Error-Message", message)
        request.send_header("Content-Length", "0")
        request.end_headers()


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()


def sample_vocab() -> list[str]:
    """albert_zh's special tokens, then every character of the sample training corpus."""
    from albert_fixtures import SPECIAL_VOCAB

    text = (SAMPLE_TRAIN).read_text(encoding="utf-8")
    characters = sorted({line.split("\t")[0] for line in text.splitlines() if "\t" in line} - set(SPECIAL_VOCAB))
    return SPECIAL_VOCAB + characters


def save_tiny_albert(directory: Path, card: str) -> Path:
    """voidful/albert_chinese_tiny's shape (embedding 128 -> hidden 312, 12 heads, intermediate 1248, "gelu"),
    one layer here, written by transformers' own save_pretrained with its MLM head, a BERT vocab.txt and a card."""
    import torch
    import transformers

    vocab = sample_vocab()
    torch.manual_seed(0)
    config = transformers.AlbertConfig(vocab_size=len(vocab), embedding_size=128, hidden_size=312,
                                       num_hidden_layers=1, num_attention_heads=12, intermediate_size=1248,
                                       hidden_act="gelu", max_position_embeddings=64)
    transformers.AlbertForMaskedLM(config).save_pretrained(directory)
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    (directory / "README.md").write_text(card, encoding="utf-8")
    (directory / "tokenizer_config.json").write_text('{"tokenizer_class": "BertTokenizer"}', encoding="utf-8")
    return directory


def repository_from_directory(directory: Path, **kwargs) -> Repository:
    return Repository(files={path.name: path.read_bytes() for path in sorted(directory.iterdir()) if path.is_file()},
                      **kwargs)
