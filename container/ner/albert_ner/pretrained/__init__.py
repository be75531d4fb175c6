"""Pretrained ALBERT weights: where they come from, and one converter per checkpoint family.

:mod:`~albert_ner.pretrained.sources` resolves ``pretrained_model`` names (through :mod:`.hub`,
:mod:`.downloads` and :mod:`.archives`) into a directory; :mod:`~albert_ner.pretrained.checkpoint` finds
the files in it and hands them to their family's converter (:mod:`.brightmart`, :mod:`.google`,
:mod:`.transformers_albert`), each a name table walked by the machinery they share in :mod:`.weights`.
"""
