"""albert-ner: train and serve a Chinese named-entity recognizer (ALBERT + BiLSTM + CRF) on your own data."""

__version__ = "0.1.0"
