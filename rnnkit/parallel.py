"""Communication for data-parallel training: the one-process version is trivial.

The training loop calls exactly two things, so that one process and K MPI ranks run the same code:

* ``allreduce_grads(grads, loss_sum, count) -> (loss_sum, count)``: sums the gradient SUMS, the
  loss sums and the counts over all ranks, in place (the loop then divides by the global count:
  the sum of per-rank sums over the global count, never a mean of means);
* ``any(flag) -> bool``: a collective stop decision (time budget, Ctrl-C/SIGTERM, NaN), so that
  no rank waits for another that already stopped.
"""

from __future__ import annotations

import numpy as np


class Comm:
    """One process: nothing to combine."""

    rank: int = 0
    size: int = 1

    def allreduce_grads(self, grads: dict[str, np.ndarray], loss_sum: float,
                        count: int) -> tuple[float, int]:
        return float(loss_sum), int(count)

    def any(self, flag: bool) -> bool:
        return bool(flag)


SERIAL = Comm()
