"""brightmart albert_zh TF1 checkpoints (``albert_model.ckpt`` + ``albert_config*.json``).

brightmart's encoder projects the word embeddings to the hidden size (``word_embeddings_2``, no bias) before
the embedding LayerNorm, and keeps its one shared block under ``bert/encoder/layer_shared/`` with BERT's
scope names. The table is walked by :func:`~albert_ner.pretrained.checkpoint.load_albert_checkpoint`.
"""

from __future__ import annotations

from albert_ner.modeling.albert import AlbertEncoder
from albert_ner.pretrained.weights import Target, TF1Family, tf1_block_weights, tf1_embedding_weights

# TF1 scope inside one block -> AlbertBlock sublayer.
_BLOCK = {
    "attention/self/query": "query",
    "attention/self/key": "key",
    "attention/self/value": "value",
    "attention/output/dense": "attention_output",
    "attention/output/LayerNorm": "attention_layer_norm",
    "intermediate/dense": "intermediate",
    "output/dense": "output_dense",
    "output/LayerNorm": "output_layer_norm",
}


def name_table(encoder: AlbertEncoder) -> dict[str, Target]:
    """TF1 variable name -> encoder weight; shapes are equal by construction."""
    if not encoder.built:
        encoder.build()
    assert encoder.embedding_projection is not None
    return {
        **tf1_embedding_weights(encoder),
        "bert/embeddings/word_embeddings_2": Target(encoder.embedding_projection.kernel),
        **tf1_block_weights("bert/encoder/layer_shared/", encoder.groups[0][0], _BLOCK),
    }


FAMILY = TF1Family(family="brightmart", description="brightmart albert_zh",
                   markers=("bert/embeddings/word_embeddings_2", "bert/encoder/layer_shared/"),
                   name_table=name_table)
