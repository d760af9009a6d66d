"""Custom schedules, two ways: compose schedule functions, or subclass AdjustVariable.

Run from the repository root (about 3 minutes on a 2-core CPU):

    .venv/bin/python examples/custom_schedule.py

or open it in Jupyter / VS Code as a notebook: the ``# %%`` markers are cells, and a cell
ending in ``fig`` shows the picture. It shows:

1. a cosine decay as a subclass of ``fk.AdjustVariable`` that overrides only
   ``schedule(progress)``, and a linear warm-up followed by a cosine decay composed from
   ``facekeypoints.schedules`` and passed as ``AdjustVariable(..., schedule=...)``;
2. ``plot_schedule``: what the callbacks would set, epoch by epoch, before any training
   (``simulate``), next to the recipe's linear ramps;
3. net4 trained with each learning-rate schedule (swapped in with
   ``set_params(callbacks__adjust_lr=...)``, the same key the CLI's ``--set`` uses), on
   600 faces for 20 epochs each, and the resulting learning curves and recipe table.

Pictures go to --out (default runs/examples/custom_schedule, ignored by git):
schedules.png and learning_curves.png. For a quick look: --epochs 3 --rows 60.
"""
# %%
import argparse
import math
import time
from pathlib import Path

import facekeypoints as fk
from facekeypoints.metrics import rmse_px
from facekeypoints.plots import plot_learning_curves, plot_schedule
from facekeypoints.reports import recipe_table
from facekeypoints.schedules import cosine, warmup

parser = argparse.ArgumentParser(description="custom AdjustVariable schedules")
parser.add_argument("--epochs", type=int, default=20, help="epochs per net (default 20)")
parser.add_argument("--rows", type=int, default=600, help="faces to use (default 600)")
parser.add_argument("--out", type=Path, default=Path("runs/examples/custom_schedule"))
args, _ = parser.parse_known_args()    # parse_known_args: Jupyter passes its own arguments
args.out.mkdir(parents=True, exist_ok=True)


# %% [markdown]
# ## 1. Two ways to a schedule
# ``AdjustVariable`` does the plumbing (reading ``max_epochs``, writing the net's shared
# variable before every epoch). The shape is a map from progress in [0, 1] to a value:
# either a subclass overriding ``schedule(progress)`` (it may use ``self.start`` and
# ``self.stop``), or a function passed as ``schedule=``, composed from small pieces.

# %%
class CosineDecay(fk.AdjustVariable):
    """start -> stop along half a cosine: slow at both ends, fast in the middle."""

    def schedule(self, progress):
        return self.stop + (self.start - self.stop) * (1 + math.cos(math.pi * progress)) / 2


# Composed: a linear warm-up from 0.003 over the first 15% of the run, then half a cosine
# from 0.03 down to 0.0001. It pickles and prints as written (see the line below).
warmup_cosine = warmup(0.15, cosine(0.03, 0.0001), start=0.003)
print("composed:", warmup_cosine)

schedules = {
    "linear": fk.AdjustVariable("update_learning_rate", 0.03, 0.0001),   # the recipe's
    "cosine": CosineDecay("update_learning_rate", 0.03, 0.0001),
    "warmup+cosine": fk.AdjustVariable("update_learning_rate", schedule=warmup_cosine),
}
momentum = fk.AdjustVariable("update_momentum", 0.9, 0.999)

for label, cb in schedules.items():
    values = cb.simulate(args.epochs)
    print(f"{label:>14}: " + " ".join(f"{v:.4f}" for v in values[:: max(1, args.epochs // 6)])
          + f" ... {values[-1]:.4f}")

# %% [markdown]
# ## 2. The schedules before training (``simulate``)

# %%
ax = plot_schedule(list(schedules.values()) + [momentum], args.epochs,
                   title=f"learning-rate schedules over {args.epochs} epochs (momentum dashed)")
fig = ax.figure
fig.savefig(args.out / "schedules.png", dpi=110, bbox_inches="tight")
fig

# %% [markdown]
# ## 3. Train net4 with each learning-rate schedule
# Same faces, epochs, seed and momentum ramp; only ``callbacks__adjust_lr`` differs.

# %%
X, y = fk.load2d()
X, y = X[:args.rows], y[:args.rows]
histories = {}
for label, cb in schedules.items():
    net = fk.presets.net4(max_epochs=args.epochs, verbose=0, random_state=0)
    net.set_params(callbacks__adjust_lr=cb)
    start = time.perf_counter()
    net.fit(X, y)
    histories[label] = [dict(h) for h in net.history]
    best = min(h["valid_loss"] for h in net.history)
    print(f"{label:>14}: {time.perf_counter() - start:5.0f} s, valid RMSE "
          f"{rmse_px(net.history[-1]['valid_loss']):.2f} px at the end, "
          f"best {rmse_px(best):.2f} px")
    # the net trained with exactly the simulated values:
    assert [round(h["learning_rate"], 6) for h in net.history] == [
        round(float(v), 6) for v in cb.simulate(args.epochs)]

# %%
print("\n" + recipe_table(histories))

# %%
ax = plot_learning_curves(histories, title=f"net4 with three learning-rate schedules, "
                                           f"{len(X)} faces")
fig = ax.figure
fig.savefig(args.out / "learning_curves.png", dpi=110, bbox_inches="tight")
print(f"\nwrote {args.out / 'schedules.png'} and {args.out / 'learning_curves.png'}")
fig
