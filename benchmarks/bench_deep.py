"""Stacked and bidirectional layers against PyTorch: one forward + backward of the layer.

    python benchmarks/bench_deep.py                 # LSTM/GRU/RNN, 2 layers x 2 directions
    python benchmarks/bench_deep.py --ragged        # packed ragged batches on the PyTorch side

Both sides get the same weights (rnnkit loads the torch state dict), the same input and the same
output gradient; the results are checked to agree before timing. One BLAS thread per side, the
two sides alternated, medians printed; ratio = torch time / rnnkit time (> 1: rnnkit faster).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cells", default="rnn,lstm,gru")
    p.add_argument("--shape", default="50,32,64,128", help="T,B,I,H")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--directions", type=int, default=2, choices=[1, 2])
    p.add_argument("--ragged", action="store_true")
    p.add_argument("--repeats", type=int, default=9)
    a = p.parse_args()

    import torch
    from threadpoolctl import threadpool_limits

    from rnnkit.layers import make_recurrent

    torch.set_num_threads(1)
    T, B, I, H = (int(v) for v in a.shape.split(","))
    bi = a.directions == 2
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    dy = rng.standard_normal((T, B, a.directions * H)).astype(np.float32)
    lengths = rng.integers(T // 2, T + 1, B) if a.ragged else None
    if lengths is not None:
        lengths[0] = T
        dy *= (np.arange(T)[:, None] < lengths[None, :])[:, :, None]
    print(
        f"T,B,I,H = {T},{B},{I},{H}  layers {a.layers}  directions {a.directions}"
        f"{'  ragged' if a.ragged else ''}  (1 thread)"
    )
    print("cell  rnnkit ms  torch ms  ratio")
    with threadpool_limits(1):
        for cell in a.cells.split(","):
            mod = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
            ref = mod(I, H, num_layers=a.layers, bidirectional=bi)
            ours = make_recurrent(cell, I, H, num_layers=a.layers, bidirectional=bi)
            ours.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
            xt, dyt = torch.from_numpy(x), torch.from_numpy(dy)

            def rnnkit_step(ours=ours):
                y, _ = ours.forward(x, lengths=lengths)
                ours.backward(dy)
                return y

            def torch_step(ref=ref, xt=xt, dyt=dyt):
                ref.zero_grad()
                xr = xt.clone().requires_grad_(True)
                if lengths is None:
                    y, _ = ref(xr)
                else:
                    pk = torch.nn.utils.rnn.pack_padded_sequence(
                        xr, torch.from_numpy(lengths), enforce_sorted=False
                    )
                    y, _ = torch.nn.utils.rnn.pad_packed_sequence(ref(pk)[0], total_length=T)
                (y * dyt).sum().backward()
                return y.detach().numpy()

            err = np.abs(rnnkit_step() - torch_step()).max()
            if not err < 1e-4:
                raise SystemExit(f"{cell}: outputs differ by {err:.2e}")
            times: dict[str, list[float]] = {"rnnkit": [], "torch": []}
            for _ in range(a.repeats):
                for name, f in (("rnnkit", rnnkit_step), ("torch", torch_step)):
                    t0 = time.perf_counter()
                    f()
                    times[name].append(time.perf_counter() - t0)
            r, t = (statistics.median(times[k]) * 1e3 for k in ("rnnkit", "torch"))
            print(f"{cell:4s}  {r:9.2f}  {t:8.2f}  {t / r:5.2f}", flush=True)


if __name__ == "__main__":
    main()
