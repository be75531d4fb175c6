"""Label Studio, where most teams label: its labelling config (:mod:`~albert_ner.label_studio.config`), the
model's entities as its predictions (:mod:`~albert_ner.label_studio.predictions`) and its REST API
(:mod:`~albert_ner.label_studio.client`). Its exports are read by :mod:`albert_ner.readers.label_studio`;
the ML backend is :mod:`albert_ner.serving.label_studio_backend`.

Offsets are Python ``str`` offsets (code points), end exclusive, which is how Label Studio counts: its
editor spreads the text into code points (so an emoji outside the Basic Multilingual Plane is one
character) and counts ``\\r\\n`` as two.
"""
