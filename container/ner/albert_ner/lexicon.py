"""Dictionaries of words (a lexicon), and which of their words cover each character of a sentence.

Chinese NER's hard part is where an entity begins and ends; a dictionary says which substrings are words
and which of them are known names. Following SoftLexicon (Ma et al., ACL 2020), every character gets
four sets of dictionary words: those it begins (B), lies inside (M), ends (E), or is by itself (S).
Here each set is pooled by type: the character's feature vector holds, per position and per *channel*,
whether some matching word has that type. Channel 0 is every word whatever its types; the others are the
types named in the dictionaries (jieba's part-of-speech tags ``nr``, ``ns``, ``nt``... or a user's own
``PRODUCT``, ``DRUG``), sorted. The vector joins the encoder's output before the BiLSTM
(:class:`~albert_ner.modeling.tagger.AlbertTagger`), and the tagger learns what each channel means for its
tags from the training sentences whose names are in the dictionary.

Matching is exact on the characters as given (no case folding), over the whole sentence before it is cut
into windows, so a word crossing a window cut still marks the characters on both sides.
:mod:`albert_ner.lexicon_lookup` does the same matching inside the SavedModel's graph.

Dictionary files are jieba's user-dictionary format: one word per line, as ``word``, ``word TYPE``,
``word freq`` or ``word freq TYPE``, separated by spaces, or by tabs (then a word may hold spaces). The
frequency is checked (a non-negative integer) but not used: the features mark presence. A word given
twice, in one file or several, has the union of its types.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.resources
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from albert_ner.errors import DataError
from albert_ner.files import PathLike, channel_files, read_text, write_text_atomically

#: Where a word lies relative to a character it covers, in the order of the feature vector.
POSITIONS = ("B", "M", "E", "S")
#: The channel every dictionary word sets, typed or not.
ANY_WORD = "*"
#: The ``lexicon`` hyperparameter's values: which dictionaries the model uses.
LEXICON_CHOICES = ("off", "general", "channel", "both")


@dataclass(frozen=True)
class Lexicon:
    """Words with their (possibly empty) sets of types, and the feature layout they define."""

    words: dict[str, frozenset[str]]
    channels: tuple[str, ...]  # ANY_WORD, then every type, sorted
    sources: tuple[str, ...]  # where the words came from, in words (kept in model_config.json)

    @classmethod
    def from_words(cls, words: dict[str, frozenset[str]], sources: Sequence[str] = ()) -> Lexicon:
        types = sorted({word_type for word_types in words.values() for word_type in word_types})
        return cls(words, (ANY_WORD, *types), tuple(sources))

    @functools.cached_property
    def matcher(self) -> LexiconMatcher:
        """The matcher of this lexicon, built once (its prefix set takes a moment for 349k words)."""
        return LexiconMatcher(self)

    @property
    def feature_size(self) -> int:
        """Length of a character's feature vector: one slot per position and channel."""
        return len(POSITIONS) * len(self.channels)

    @property
    def longest_word(self) -> int:
        return max(map(len, self.words), default=0)

    def word_channels(self) -> dict[str, tuple[int, ...]]:
        """The channel indices each word sets (``ANY_WORD``'s 0 first)."""
        index = {channel: number for number, channel in enumerate(self.channels)}
        return {word: (0, *sorted(index[word_type] for word_type in types)) for word, types in self.words.items()}

    def save(self, path: Path) -> None:
        """Write the merged dictionary, one ``word<TAB>TYPE`` line per type; an untyped word alone, or as
        ``word<TAB>0`` (frequency 0) when it holds a space, which a bare line would read as a separator."""
        lines = []
        for word in sorted(self.words):
            untyped = word if word.split() == [word] else f"{word}\t0"
            lines.extend([f"{word}\t{word_type}" for word_type in sorted(self.words[word])] or [untyped])
        write_text_atomically(path, "\n".join(lines) + "\n")

    def describe(self) -> str:
        typed = sum(1 for types in self.words.values() if types)
        return (f"{len(self.words):,} words ({typed:,} typed), {len(self.channels) - 1} types, longest "
                f"{self.longest_word} characters")


def read_lexicon(paths: Sequence[PathLike], sources: Sequence[str] | None = None) -> Lexicon:
    """Read and merge dictionary files; a bad line fails naming its file and line. ``sources`` says
    where they came from (by default their paths)."""
    words: dict[str, set[str]] = {}
    for path in paths:
        lines = [(number, line) for number, line in enumerate(read_text(path).splitlines(), start=1)
                 if line.strip()]
        if not lines:
            raise DataError("the dictionary file holds no words", path)
        for number, line in lines:
            word, word_type = _parse_line(line, path, number)
            words.setdefault(word, set())
            if word_type is not None:
                words[word].add(word_type)
    if not words:
        raise DataError("no dictionary files given")
    return Lexicon.from_words({word: frozenset(types) for word, types in words.items()},
                              [str(path) for path in paths] if sources is None else sources)


def _parse_line(line: str, path: PathLike, number: int) -> tuple[str, str | None]:
    """``(word, type or None)`` of one dictionary line, in jieba's user-dictionary format."""
    fields = line.split("\t") if "\t" in line else line.split()
    fields = [field.strip() for field in fields]
    if any(not field for field in fields) or len(fields) > 3:
        raise DataError(f"expected `word`, `word TYPE`, `word freq` or `word freq TYPE` separated by spaces or "
                        f"tabs (tabs when the word holds spaces), found {line!r}", path, number)
    word, rest = fields[0], fields[1:]
    if len(rest) == 2 or (len(rest) == 1 and rest[0].isdigit()):
        if not rest[0].isascii() or not rest[0].isdigit():
            raise DataError(f"the frequency of {word!r} must be a non-negative integer, found {rest[0]!r}",
                            path, number)
        rest = rest[1:]
    return word, (rest[0] if rest else None)


def general_dictionary() -> Path:
    """jieba's ``dict.txt``: 349,046 words with frequencies and part-of-speech tags (``nr`` person
    names, ``ns`` places, ``nt`` organisations, ``nz`` other proper names...), shipped inside the package."""
    return Path(str(importlib.resources.files("jieba").joinpath("dict.txt")))


def general_dictionary_name() -> str:
    return f"jieba {importlib.metadata.version('jieba')} dict.txt"


def choose_lexicon(choice: str | None, channel: Path | None) -> Lexicon | None:
    """The lexicon the ``lexicon`` hyperparameter and the ``lexicon`` channel ask for.

    Unset, it is the general dictionary, plus the channel's files when the job has a ``lexicon`` channel:
    a dictionary given is always used, and a choice that would leave it unused is an error.
    """
    if choice is None:
        choice = "both" if channel is not None else "general"
    if channel is not None and choice in ("off", "general"):
        raise DataError(f"the job has a `lexicon` channel, which hyperparameter lexicon={choice!r} leaves unused: "
                        f"set lexicon to channel or both, or remove the channel")
    if choice == "off":
        return None
    paths: list[Path] = []
    sources = []
    if choice in ("general", "both"):
        paths.append(general_dictionary())
        sources.append(general_dictionary_name())
    if choice in ("channel", "both"):
        if channel is None:
            raise DataError(f"hyperparameter lexicon={choice!r} needs a `lexicon` channel of dictionary files, "
                            f"and the job has none")
        files = channel_files(channel)  # a file, or a Pipe-mode channel's FIFO, is one dictionary
        if not files:
            raise DataError("the `lexicon` channel holds no files", channel)
        paths.extend(files)
        sources.extend(str(path) for path in files)
    return read_lexicon(paths, sources)


class LexiconMatcher:
    """Finds every dictionary word in a token sequence and turns the matches into feature vectors.

    One dictionary lookup per step of the scan: each key maps to the word's feature pattern (or -1 when it
    is only a prefix of longer words) and whether longer words start with it. A pattern is the flat
    feature cells a word of its length and channels sets, relative to its first character, so a sentence's
    features are one vectorised scatter of all its matches.
    """

    def __init__(self, lexicon: Lexicon):
        self.lexicon = lexicon
        self.feature_size = lexicon.feature_size
        width = len(lexicon.channels)
        patterns: dict[tuple[int, tuple[int, ...]], int] = {}
        cells: list[list[int]] = []
        self._table: dict[str, tuple[int, bool]] = {}
        for word, channels in lexicon.word_channels().items():
            key = (len(word), channels)
            if key not in patterns:
                patterns[key] = len(cells)
                cells.append(self._cells(len(word), channels, width))
            self._table[word] = (patterns[key], False)
        for word in lexicon.words:
            for end in range(1, len(word)):
                pattern, _ = self._table.get(word[:end], (-1, True))
                self._table[word[:end]] = (pattern, True)
        self._cells_of = np.full((len(cells), max(map(len, cells), default=0)), -1, np.int64)
        for number, pattern_cells in enumerate(cells):
            self._cells_of[number, :len(pattern_cells)] = pattern_cells
        self._patterns = {pattern: key for key, pattern in patterns.items()}

    def _cells(self, length: int, channels: tuple[int, ...], width: int) -> list[int]:
        """Flat cells ``row * feature_size + position * width + channel`` a word sets, from its first row."""
        if length == 1:
            placed = [(0, POSITIONS.index("S"))]
        else:
            placed = [(0, POSITIONS.index("B")), *((row, POSITIONS.index("M")) for row in range(1, length - 1)),
                      (length - 1, POSITIONS.index("E"))]
        return [row * self.feature_size + position * width + channel
                for row, position in placed for channel in channels]

    def _scan(self, tokens: Sequence[str]) -> tuple[list[int], list[int]]:
        """Start positions and pattern numbers of every occurrence of a dictionary word."""
        starts: list[int] = []
        patterns: list[int] = []
        table = self._table
        for start in range(len(tokens)):
            key = ""
            for token in tokens[start:]:
                key += token
                entry = table.get(key)
                if entry is None:
                    break
                if entry[0] >= 0:
                    starts.append(start)
                    patterns.append(entry[0])
                if not entry[1]:
                    break
        return starts, patterns

    def matches(self, tokens: Sequence[str]) -> list[tuple[int, int, tuple[int, ...]]]:
        """``(start, end, channels)`` of every occurrence of a dictionary word, end exclusive."""
        found = []
        for start, pattern in zip(*self._scan(tokens), strict=True):
            length, channels = self._patterns[pattern]
            found.append((start, start + length, channels))
        return found

    def features(self, tokens: Sequence[str]) -> np.ndarray:
        """``[len(tokens), feature_size]`` uint8: 1 where some word covering the character sets the slot."""
        starts, patterns = self._scan(tokens)
        features = np.zeros(len(tokens) * self.feature_size, np.uint8)
        if starts:
            pattern_cells = self._cells_of[patterns]
            cells = pattern_cells + np.asarray(starts, np.int64)[:, None] * self.feature_size
            features[cells[pattern_cells >= 0]] = 1
        return features.reshape(len(tokens), self.feature_size)

    def coverage(self, sentences: Iterable[Sequence[str]]) -> tuple[int, int]:
        """``(characters covered by a word of two or more characters, characters)``."""
        covered = total = 0
        for tokens in sentences:
            mask = np.zeros(len(tokens), bool)
            for start, end, _ in self.matches(tokens):
                if end - start > 1:
                    mask[start:end] = True
            covered, total = covered + int(mask.sum()), total + len(tokens)
        return covered, total
