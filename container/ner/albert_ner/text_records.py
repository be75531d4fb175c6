"""The text of one JSON input record, by one rule for ``serve`` and ``albert-ner predict``/``select``.

A record is a JSON string, or an object holding the text under ``"text"`` or, failing that, ``"source"``
(the key of a SageMaker Ground Truth input manifest line), so a manifest made for labelling can be tagged
as it is, by the endpoint or the command line.
"""

from __future__ import annotations

from typing import Any

#: The keys an object's text is looked for under, in this order.
TEXT_KEYS = ("text", "source")


def text_of(value: Any) -> str:
    """The text of a decoded JSON record; ValueError, with a message for the user, when it holds none."""
    if isinstance(value, dict):
        key = next((key for key in TEXT_KEYS if key in value), None)
        if key is None:
            raise ValueError(f'an object needs a "text" (or "source") key, found keys {sorted(value)}')
        value = value[key]
    if not isinstance(value, str):
        raise ValueError(f'expected a string or an object with a "text" (or "source") string, found '
                         f'{type(value).__name__}')
    return value
