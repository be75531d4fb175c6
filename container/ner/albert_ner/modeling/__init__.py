"""Keras layers: the ALBERT encoder, the CRF, and the tagger that joins them."""
