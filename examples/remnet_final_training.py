"""Thesis §6.4.2 and table 6.2: final training of REMNet-128 and REMNet-256.

REMNet (CONV_2.N, CONV_2.N, CONV_3.N, CONV_5.N, POOL_5.A, then two CONV_3.H
branches into the output) is trained on the whole Fashion-MNIST training set
with random horizontal flips and random erasing, Adamax, 20 epochs, and scored
once on the test set; the table compares each width with the thesis's
accuracy and parameter count. Each trained network is exported as
``nord train-final`` does (``<out>/remnet-<C>/``), and the table is written to
``<out>/summary.json`` and ``<out>/summary.md``.

The thesis settings are the defaults. They are a GPU job: on a 2-core CPU one
epoch of REMNet-128 takes about a quarter of an hour. A quick look:

    python examples/remnet_final_training.py --channels 8 --epochs 1 --percentage 0.02

Run: python examples/remnet_final_training.py [--channels 128 256] [--epochs 20]
     [--percentage 1.0] [--batch-size 128] [--seed 0] [--device cuda]
     [--out runs/remnet_final]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from nord.execution.final_training import FinalTrainingSettings, architecture_of, train_final

# Table 6.2: the published test accuracies. (§6.4.2 gives REMNet-128 791,338
# parameters, which the compiled network has exactly, and REMNet-256 "3.1 million".)
THESIS_ACCURACY = {128: 0.9426, 256: 0.9446}
TOLERANCE = 0.005  # half a point


def row(channels: int, result, epochs: int) -> dict:
    accuracy = result.test_metrics["accuracy"]
    published = THESIS_ACCURACY.get(channels)
    entry = {"channels": channels, "epochs": epochs, "accuracy": accuracy,
             "test_loss": result.test_loss, "parameters": result.parameters,
             "seconds": round(result.seconds, 1), "train_losses": list(result.train_losses),
             "export": str(result.export_folder)}
    if published:
        entry.update(thesis_accuracy=published, difference=accuracy - published,
                     within_half_a_point=abs(accuracy - published) <= TOLERANCE)
    return entry


def table(rows) -> str:
    lines = ["| network | parameters | epochs | test accuracy | thesis | difference | time |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        thesis = f"{r['thesis_accuracy']:.2%}" if "thesis_accuracy" in r else "–"
        difference = f"{100 * r['difference']:+.2f} pt" if "difference" in r else "–"
        lines.append(f"| REMNet-{r['channels']} | {r['parameters']:,} | {r['epochs']} | "
                     f"{r['accuracy']:.2%} | {thesis} | {difference} | {r['seconds']:.0f} s |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--channels", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--percentage", type=float, default=1.0,
                        help="share of the training set (thesis: all of it)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when present)")
    parser.add_argument("--out", default="runs/remnet_final")
    args = parser.parse_args(argv)

    if torch.cuda.is_available() and args.device in (None, "cuda"):
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its kernels once
    out = Path(args.out)
    rows = []
    for channels in args.channels:
        settings = FinalTrainingSettings(epochs=args.epochs, batch_size=args.batch_size,
                                         data_percentage=args.percentage, seed=args.seed,
                                         device=args.device)
        print(f"REMNet-{channels}: {args.epochs} epochs of Adamax on "
              f"{args.percentage:.0%} of Fashion-MNIST, flip + erasing", flush=True)
        result = train_final(architecture_of("remnet", channels), settings,
                             out / f"remnet-{channels}")
        rows.append(row(channels, result, args.epochs))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(rows, indent=1))
    (out / "summary.md").write_text(table(rows) + "\n")
    print(table(rows))
    return rows


if __name__ == "__main__":
    main()
