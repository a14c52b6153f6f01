"""The training layer in parts, one concept per module:

* :mod:`~rnnkit.training.protocol` -- the task contract (the model's is
  :mod:`rnnkit.models.protocol`);
* :mod:`~rnnkit.training.config` -- :class:`FitConfig`, :class:`FitResult`,
  :class:`TrainingStopped`;
* :mod:`~rnnkit.training.position` -- where training is, saved and read in one place;
* :mod:`~rnnkit.training.trainer` -- :class:`Trainer`: restore, epochs, steps, evaluation, save;
* :mod:`~rnnkit.training.gradients` -- the mean over the global count, clipping, the NaN stop;
* :mod:`~rnnkit.training.schedule` -- learning-rate halving and decay, the best model;
* :mod:`~rnnkit.training.interrupts` -- Ctrl-C and SIGTERM as a returned :class:`Stop`;
* :mod:`~rnnkit.training.evaluation` -- held-out metrics;
* :mod:`~rnnkit.training.record` -- a run folder or memory;
* :mod:`~rnnkit.training.metrics`, :mod:`~rnnkit.training.plots`,
  :mod:`~rnnkit.training.progress` -- metrics rows, loss.png, the progress bar.

:func:`rnnkit.fit.fit` is the public entry point, and :mod:`rnnkit.fit` re-exports the names
programs import. This file imports nothing, so that any module of the training layer (``rundir``
reads :mod:`~rnnkit.training.position`) can import one of these without the whole trainer.
"""
