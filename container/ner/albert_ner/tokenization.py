"""Character-level tokenization over a BERT-style ``vocab.txt``.

NER labels belong to characters, so the tokenizer emits exactly one id per input token and never splits,
merges or drops one: entity offsets stay valid without any alignment bookkeeping. Normalisation follows
what the Chinese BERT/ALBERT vocabularies were built with (lower case, accents stripped) plus full-width
ASCII folded to half-width; whitespace and control characters, which BERT's tokenizer would delete, map to
the vocabulary's space token instead so that they keep their position.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from albert_ner.errors import DataError
from albert_ner.files import PathLike, read_text, write_text_atomically

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
#: Stands for whitespace and control characters; albert_zh/BERT-zh vocabularies have it unused.
SPACE_TOKEN = "[unused1]"
_FULL_WIDTH_FIRST, _FULL_WIDTH_LAST, _FULL_WIDTH_SHIFT = 0xFF01, 0xFF5E, 0xFEE0


class _DuplicateToken(ValueError):
    def __init__(self, token: str, first_id: int, second_id: int):
        super().__init__(f"vocabulary token {token!r} appears twice, at ids {first_id} and {second_id}")
        self.second_id = second_id


class Vocab:
    """Tokens indexed by id. The five special tokens must be present, wherever the file puts them."""

    def __init__(self, tokens: Sequence[str]):
        self.tokens = tuple(tokens)
        self._ids: dict[str, int] = {}
        for index, token in enumerate(self.tokens):
            if token in self._ids:
                raise _DuplicateToken(token, self._ids[token], index)
            self._ids[token] = index
        missing = [token for token in SPECIAL_TOKENS if token not in self._ids]
        if missing:
            raise ValueError(f"vocabulary lacks the special tokens {', '.join(missing)}")

    @classmethod
    def from_file(cls, path: PathLike) -> Vocab:
        """Read ``vocab.txt``: one token per line, the line number minus one being its id."""
        lines = read_text(path).split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        tokens = [line.rstrip("\r") for line in lines]
        for index, token in enumerate(tokens):
            if not token:
                raise DataError("empty vocabulary line", path, index + 1)
        try:
            return cls(tokens)
        except _DuplicateToken as error:
            raise DataError(str(error), path, error.second_id + 1) from None
        except ValueError as error:
            raise DataError(str(error), path) from None

    def save(self, path: PathLike) -> None:
        write_text_atomically(Path(path), "".join(token + "\n" for token in self.tokens))

    @classmethod
    def build(
        cls,
        token_sequences: Iterable[Sequence[str]],
        min_count: int = 1,
        max_size: int | None = None,
        lower_case: bool = True,
    ) -> Vocab:
        """A vocabulary from training data, for training without a pretrained encoder.

        Layout: the special tokens (``[PAD]``=0, ``[UNK]``=1, ``[CLS]``=2, ``[SEP]``=3, ``[MASK]``=4), then
        ``[unused1]`` for whitespace, then the normalised tokens seen at least ``min_count`` times, most
        frequent first, ties in character order. ``max_size`` caps the total size, special tokens included.
        Use the same ``lower_case`` for the :class:`CharTokenizer`.
        """
        reserved = (*SPECIAL_TOKENS, SPACE_TOKEN)
        if max_size is not None and max_size < len(reserved):
            raise ValueError(f"max_size {max_size} leaves no room for the {len(reserved)} reserved tokens")
        raw_counts: Counter[str] = Counter()
        for tokens in token_sequences:
            raw_counts.update(tokens)
        counts: Counter[str] = Counter()
        for token, count in raw_counts.items():
            counts[normalize_token(token, lower_case)] += count
        ranked = sorted(
            (token for token, count in counts.items() if count >= min_count and token not in reserved),
            key=lambda token: (-counts[token], token),
        )
        if max_size is not None:
            ranked = ranked[: max_size - len(reserved)]
        return cls((*reserved, *ranked))

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._ids

    def id(self, token: str) -> int:
        """The token's id, or ``[UNK]``'s."""
        return self._ids.get(token, self.unk_id)

    @property
    def pad_id(self) -> int:
        return self._ids["[PAD]"]

    @property
    def unk_id(self) -> int:
        return self._ids["[UNK]"]

    @property
    def cls_id(self) -> int:
        return self._ids["[CLS]"]

    @property
    def sep_id(self) -> int:
        return self._ids["[SEP]"]

    @property
    def mask_id(self) -> int:
        return self._ids["[MASK]"]


def _normalize_char(char: str, lower_case: bool) -> str:
    """One character's normal form; ``""`` for whitespace and control characters."""
    if char.isspace() or unicodedata.category(char).startswith("C"):
        return ""
    code = ord(char)
    if _FULL_WIDTH_FIRST <= code <= _FULL_WIDTH_LAST:
        char = chr(code - _FULL_WIDTH_SHIFT)
    if lower_case:
        char = char.lower()
        decomposed = unicodedata.normalize("NFD", char)
        stripped = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
        if stripped and stripped != decomposed:
            char = unicodedata.normalize("NFC", stripped)
    return char


def normalize_token(token: str, lower_case: bool = True) -> str:
    """The vocabulary form of a token: full-width ASCII to half-width, lower case and accents stripped
    (when ``lower_case``); whitespace and control characters become :data:`SPACE_TOKEN`.

    Works on multi-character tokens (a word on a CoNLL line) character by character.
    """
    return "".join(_normalize_char(char, lower_case) for char in token) or SPACE_TOKEN


@dataclass(frozen=True)
class UnknownStats:
    """How many tokens fell back to ``[UNK]``, and which ones most often (in their original form)."""

    count: int
    total: int
    most_common: tuple[tuple[str, int], ...]

    @property
    def rate(self) -> float:
        return self.count / self.total if self.total else 0.0

    def __str__(self) -> str:
        examples = ", ".join(f"{token!r} x{count}" for token, count in self.most_common[:10])
        return f"{self.count} of {self.total} tokens ({self.rate:.2%}) are [UNK]" + (
            f"; most common: {examples}" if examples else ""
        )


class CharTokenizer:
    """Maps each token to one vocabulary id, after :func:`normalize_token`."""

    def __init__(self, vocab: Vocab, lower_case: bool = True):
        self.vocab = vocab
        self.lower_case = lower_case
        self._cache: dict[str, int] = {}

    def normalize(self, char: str) -> str:
        """The vocabulary token ``char`` is looked up as; whitespace becomes ``[UNK]`` if the vocabulary has
        no :data:`SPACE_TOKEN`."""
        token = normalize_token(char, self.lower_case)
        return "[UNK]" if token == SPACE_TOKEN and SPACE_TOKEN not in self.vocab else token

    def token_id(self, token: str) -> int:
        token_id = self._cache.get(token)
        if token_id is None:
            token_id = self._cache[token] = self.vocab.id(self.normalize(token))
        return token_id

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        """Exactly one int32 id per token; no ``[CLS]``/``[SEP]`` (the model input builder adds them)."""
        return np.fromiter((self.token_id(token) for token in tokens), dtype=np.int32, count=len(tokens))

    def encode_corpus(self, token_sequences: Iterable[Sequence[str]]) -> tuple[list[np.ndarray], UnknownStats]:
        """Encode many sequences and count the tokens that became ``[UNK]``."""
        unk_id = self.vocab.unk_id
        encoded = []
        unknown: Counter[str] = Counter()
        total = 0
        for tokens in token_sequences:
            ids = self.encode(tokens)
            encoded.append(ids)
            total += len(ids)
            for position in np.flatnonzero(ids == unk_id):
                unknown[tokens[int(position)]] += 1
        stats = UnknownStats(sum(unknown.values()), total, tuple(unknown.most_common(20)))
        return encoded, stats
