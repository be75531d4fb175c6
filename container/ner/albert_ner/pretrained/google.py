"""Google-format ALBERT TF1 checkpoints: Google's albert_*_zh tarballs and brightmart's ``*_zh_google`` zips.

Google's encoder maps the embeddings to the hidden size (``embedding_hidden_mapping_in``, when the two sizes
differ) after the embedding LayerNorm, and keeps every group's inner blocks under
``bert/encoder/transformer/group_<g>/inner_group_<i>/`` with scope names of its own. The table is walked by
:func:`~albert_ner.pretrained.checkpoint.load_albert_checkpoint`.
"""

from __future__ import annotations

from albert_ner.modeling.albert import AlbertEncoder
from albert_ner.pretrained.weights import Target, TF1Family, layer_weights, tf1_block_weights, tf1_embedding_weights

# TF1 scope inside one block -> AlbertBlock sublayer.
_BLOCK = {
    "attention_1/self/query": "query",
    "attention_1/self/key": "key",
    "attention_1/self/value": "value",
    "attention_1/output/dense": "attention_output",
    "LayerNorm": "attention_layer_norm",
    "ffn_1/intermediate/dense": "intermediate",
    "ffn_1/intermediate/output/dense": "output_dense",
    "LayerNorm_1": "output_layer_norm",
}


def name_table(encoder: AlbertEncoder) -> dict[str, Target]:
    """TF1 variable name -> encoder weight, for every group the config's layers use."""
    if not encoder.built:
        encoder.build()
    config = encoder.config
    table = tf1_embedding_weights(encoder)
    if config.has_embedding_mapping:
        table.update(layer_weights("bert/encoder/embedding_hidden_mapping_in", encoder.embedding_projection))
    for group_index, group in zip(config.used_groups(), encoder.groups, strict=True):
        for inner_index, block in enumerate(group):
            prefix = f"bert/encoder/transformer/group_{group_index}/inner_group_{inner_index}/"
            table.update(tf1_block_weights(prefix, block, _BLOCK))
    return table


FAMILY = TF1Family(family="google", description="Google-format ALBERT",
                   markers=("bert/encoder/embedding_hidden_mapping_in/", "bert/encoder/transformer/"),
                   name_table=name_table)
