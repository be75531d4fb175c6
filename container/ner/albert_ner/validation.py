"""Evaluation during training: the validation score at each evaluation, the best weights so far, and the
count of evaluations without improvement that early stopping reads.

With ``ema_momentum`` the optimizers keep moving averages of the weights; they are what is scored and
kept (the final model is the best averaged weights), while the optimizer steps go on with the raw ones.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np

from albert_ner.evaluation import evaluate
from albert_ner.optimization import averaged_weights
from albert_ner.prediction import Predictor
from albert_ner.sentences import Sentence
from albert_ner.training_history import TrainingHistory
from albert_ner.training_state import Progress, TrainingState

log = logging.getLogger("albert_ner.training")


class Validation:
    """Evaluation during training: scores the weights (their moving averages, with ``ema_momentum``) on the
    validation sentences, keeps the best ones so far, and counts evaluations without improvement."""

    def __init__(self, predictor: Predictor, sentences: Sequence[Sentence], state: TrainingState,
                 history: TrainingHistory, patience: int | None, best_weights: list[np.ndarray] | None):
        self.predictor, self.sentences, self.state = predictor, sentences, state
        self.history, self.patience, self.best_weights = history, patience, best_weights

    def run(self, progress: Progress) -> bool:
        """Evaluate now, updating ``progress``'s early-stopping state; return whether to stop early."""
        started = time.perf_counter()
        model = self.predictor.model
        with averaged_weights(model, *self.state.optimizers):
            predicted = self.predictor.predict_entities([sentence.tokens for sentence in self.sentences])
            report = evaluate(self.sentences, predicted)
            better = model.get_weights() if report.f1 > progress.best_f1 else None
        seconds = time.perf_counter() - started
        log.info("epoch=%d step=%d val_precision=%.4f val_recall=%.4f val_f1=%.4f eval_s=%.1f", progress.epoch,
                 progress.step, report.micro.precision, report.micro.recall, report.f1, seconds)
        self.history.record_evaluation(progress.step, progress.epoch, report.micro.precision, report.micro.recall,
                                       report.f1, seconds)
        if better is not None:
            self.best_weights = better
            progress.best_f1, progress.evaluations_since_best = report.f1, 0
            self.state.save_best_weights(better)
            return False
        progress.evaluations_since_best += 1
        if self.patience and progress.evaluations_since_best >= self.patience:
            log.info("early stopping: no better validation F1 in %d evaluations (best %.4f)",
                     progress.evaluations_since_best, progress.best_f1)
            return True
        return False
