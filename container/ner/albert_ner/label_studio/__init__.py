"""Label Studio, where most teams label: its labelling config (:mod:`~albert_ner.label_studio.config`) and
the model's entities as its predictions (:mod:`~albert_ner.label_studio.predictions`). Its exports are read
by :mod:`albert_ner.readers.label_studio`.

Offsets are Python ``str`` offsets (code points), end exclusive, which is how Label Studio counts: its
editor spreads the text into code points (so an emoji outside the Basic Multilingual Plane is one
character) and counts ``\\r\\n`` as two.
"""
