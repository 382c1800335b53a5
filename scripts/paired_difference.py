"""Paired difference of two evaluations of the same images: mean of B - A image by image.

Two checkpoints (or runs) scored on the same images differ by less than their two intervals suggest, because
most of the spread of -L_k is between images, and that spread cancels in a paired difference. This reads two
result files (with ``per_image_nll``, which ``concretelab evaluate`` keeps since this script was added), checks
that they scored the same images of the same data, and prints the mean difference B - A with its
normal-approximation 95% interval (``concretelab.train.evaluate.paired_difference``). It reads both kinds of
file: ``concretelab evaluate``'s ``RUN/eval-*.json`` and the test bounds that ``concretelab reproduce table1``
caches in a cell's run folder (``RUN/reproduce-eval-*.json``, which name neither their run nor their data: the
run is the file's folder).

    python scripts/paired_difference.py RUN/eval-valid-k5000-best-subset1000.json \
        RUN/eval-valid-k5000-last-subset1000.json
    python scripts/paired_difference.py \
        ../runs/table1/CELL/reproduce-eval-test-k5000-n10000-seed0-best-step600000.json \
        ../runs/table1/CELL-cosine-1000000/reproduce-eval-test-k5000-n10000-seed0-best-step1000000.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from concretelab.train.evaluate import paired_difference

SAME = ("data", "split", "num_images_requested", "subset_seed", "subset_rule", "n_images")


def read(path: Path) -> dict:
    """A result file, with ``run`` (the file's folder where it names none) and ``n_images`` (``images`` in the
    files of ``reproduce table1``) filled in."""
    result = json.loads(path.read_text(encoding="utf-8"))
    result.setdefault("run", str(path.resolve().parent))
    if "n_images" not in result and "images" in result:
        result["n_images"] = result["images"]
    return result


def paired(a: dict, b: dict) -> tuple[float, float]:
    """(mean of B - A, half-width of its 95% interval) over the images both results scored."""
    for key in SAME:
        if a.get(key) != b.get(key):
            raise SystemExit(f"the two results scored different images: {key} is {a.get(key)!r} and {b.get(key)!r}")
    if "per_image_nll" not in a or "per_image_nll" not in b:
        raise SystemExit("a result has no per_image_nll (written by an older evaluate): evaluate it again")
    return paired_difference(a["per_image_nll"], b["per_image_nll"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path, help="result A (the reference)")
    parser.add_argument("b", type=Path, nargs="+", help="result(s) B, each compared with A")
    args = parser.parse_args()
    a = read(args.a)
    print("| A | B | images | -L_k of A | -L_k of B | B - A, paired [95%] |")
    print("|---|---|---|---|---|---|")
    for path in args.b:
        b = read(path)
        mean, half = paired(a, b)
        print(f"| {_label(a)} | {_label(b)} | {a['n_images']:,} | {a['nll']:.2f} | {b['nll']:.2f} | "
              f"{mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}] |")


def _label(result: dict) -> str:
    run = Path(result["run"]).name
    return f"`{run}` {result['checkpoint']} (step {result['checkpoint_step']:,}), L_{result['k']:,}"


if __name__ == "__main__":
    main()
