"""The ``python -m`` commands of the generated data sets: ``python -m rnnkit.data.topics`` and
``python -m rnnkit.data.addition`` run these (the data modules themselves stay quiet)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..data import addition, topics
from ..errors import RnnkitError


def topics_main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=topics.__doc__.split("\n")[0] if topics.__doc__ else None
    )
    ap.add_argument("--out", required=True, help="the label<TAB>text file to write")
    ap.add_argument(
        "--packages",
        default=",".join(topics.PACKAGES),
        help=f"comma-separated standard-library packages (default: {','.join(topics.PACKAGES)})",
    )
    a = ap.parse_args(argv)
    packages = [p for p in a.packages.split(",") if p]
    try:
        n = topics.write_topics(a.out, packages)
    except RnnkitError as exc:
        ap.exit(2, f"rnnkit: error: {exc}\n")
    except OSError as exc:
        ap.exit(2, f"rnnkit: error: cannot write {a.out}: {exc.strerror}\n")
    print(f"wrote {n} examples of {len(packages)} packages to {a.out}")


def addition_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m rnnkit.data.addition",
        description="Write generated source<TAB>target pairs.",
    )
    p.add_argument("--pairs", required=True, metavar="FILE", help="output file")
    p.add_argument("--kind", choices=["addition", "reverse", "dates"], default="addition")
    p.add_argument("-n", type=int, default=20000, help="pairs (default: 20000)")
    p.add_argument("--digits", type=int, default=3, help="addition: operand digits (default: 3)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    try:
        if a.kind == "addition":  # no padding: the seq2seq task pads by itself
            pairs = [
                (f"{x}+{y}", str(x + y))
                for x, y in addition.addition_operands(a.n, a.digits, a.seed).tolist()
            ]
        elif a.kind == "reverse":
            pairs = addition.reversal_pairs(a.n, a.seed)
        else:
            pairs = addition.date_pairs(a.n, a.seed)
        addition.write_pairs(a.pairs, pairs)
    except (RnnkitError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(pairs)} {a.kind} pairs to {a.pairs}")
    return 0
