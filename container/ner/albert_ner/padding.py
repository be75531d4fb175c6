"""Right-padding variable-length sequences into the rectangular batches a model takes.

Shared by the training batches and the Predictor, so that what the model is trained on and what it is
asked at serving time are padded the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def pad_batch(sequences: Iterable[np.ndarray], pad_value: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad 1-D int arrays to a ``[batch, longest]`` int32 matrix; also return the lengths."""
    sequences = list(sequences)
    lengths = np.array([len(sequence) for sequence in sequences], dtype=np.int32)
    padded = np.full((len(sequences), int(lengths.max(initial=0))), pad_value, dtype=np.int32)
    for row, sequence in enumerate(sequences):
        padded[row, :len(sequence)] = sequence
    return padded, lengths


def pad_features(rows: Sequence[np.ndarray], size: int) -> np.ndarray:
    """Right-pad ``[length, size]`` feature arrays to one ``[batch, longest, size]`` uint8 array of zeros."""
    padded = np.zeros((len(rows), max((len(row) for row in rows), default=0), size), np.uint8)
    for number, row in enumerate(rows):
        padded[number, :len(row)] = row
    return padded
