"""Readers of the labelling tools' own export formats, one module per format.

Each module turns its format into :class:`~albert_ner.sentences.Sentence` objects; :mod:`albert_ner.data`
detects which one a file is from its content and calls it. :mod:`~albert_ner.readers.spans` holds what
they share: the options, the offset check against the mention text (with the UTF-16 repair) and the
resolution of overlapping entities.
"""
