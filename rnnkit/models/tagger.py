"""A hidden-to-hidden tagger: one output per input step, its outputs never fed back (the
``--model hidden`` of ``rnnkit.tasks.transduce``).
"""

from __future__ import annotations

import numpy as np

from ..functional import lengths_to_mask, softmax_cross_entropy
from ..module import Module
from .lm import LanguageModel, LMConfig
from .output_rnn import sequence_counts
from .protocol import StepOut

__all__ = ["HiddenTagger"]


class HiddenTagger(Module):
    """x(t) -> embedding -> recurrent layer (h(t-1) -> h(t)) -> o(t) = c + V h(t) at every step.

    A :class:`~rnnkit.models.lm.LanguageModel` (child ``lm``) whose targets are the task's outputs
    instead of the next input; inputs and outputs share the id range [0, vocab_size)."""

    def __init__(
        self,
        vocab_size: int,
        embed_size: int,
        hidden_size: int,
        cell: str = "rnn",
        seed: int = 0,
        dtype: str = "float32",
    ):
        super().__init__()
        self.lm = LanguageModel(
            LMConfig(
                vocab_size=vocab_size,
                embed_size=embed_size,
                hidden_size=hidden_size,
                cell=cell,
                seed=seed,
                dtype=dtype,
            )
        )

    def loss_and_grads(self, batch, carry=None) -> StepOut:
        r = self.lm.loss_and_grads(batch)
        return StepOut(r.loss_sum, r.count, self.named_grads())

    def evaluate(self, batch, carry=None) -> StepOut:
        inputs, targets, lengths = batch
        lm = self.lm
        y, _ = lm.rnn.forward(lm.embed.forward(inputs), lengths=lengths)
        logits = lm.out.forward(y)  # (T, B, V)
        mask = None if lengths is None else lengths_to_mask(lengths, y.shape[0])
        extra = sequence_counts(logits.argmax(axis=2), targets, lengths)
        nll, n, _ = softmax_cross_entropy(logits, targets, mask, inplace=True)
        extra["tf_correct"] = extra["correct"]  # nothing is fed back
        return StepOut(nll, n, None, extra=extra)

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """(T, B) ids -> (T, B) argmax outputs."""
        y, _ = self.lm.rnn.forward(self.lm.embed.forward(inputs))
        return self.lm.out.forward(y).argmax(axis=2)
