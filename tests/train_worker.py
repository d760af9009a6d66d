"""A training process for the kill/resume tests: tiny net, checkpoint every epoch.

    python tests/train_worker.py OUT_DIR [--resume] [--sigint]

Prints "done N" after epoch N's checkpoint is on disk, sleeps a little between epochs so a
test can kill it mid-run, and writes OUT_DIR/final.pt (weights) and OUT_DIR/history.json.
Exits 130 when stopped by Ctrl-C.
"""
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import facekeypoints as fk  # noqa: E402
from facekeypoints.checkpoint import Checkpoint  # noqa: E402
from tests.conftest import tiny_data, tiny_net  # noqa: E402


def report(nn, history):
    print(f"done {len(history)}", flush=True)
    time.sleep(0.3)


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    X, y = tiny_data(n=48)
    net = tiny_net(
        max_epochs=8, batch_iterator_train=fk.FlipBatchIterator(16),
        layers=[("input", fk.layers.InputLayer), ("conv1", fk.layers.Conv2DLayer),
                ("pool1", fk.layers.MaxPool2DLayer), ("dropout1", fk.layers.DropoutLayer),
                ("hidden", fk.layers.DenseLayer), ("output", fk.layers.DenseLayer)],
        dropout1_p=0.2,
        update_learning_rate=fk.shared(fk.float32(0.05)),
        callbacks=[("adjust_lr", fk.AdjustVariable("update_learning_rate", 0.05, 0.001)),
                   ("stop", fk.EarlyStopping(patience=20, verbose=False)),
                   ("checkpoint", Checkpoint(out / "checkpoint.pt",
                                             handle_sigint="--sigint" in sys.argv))],
        on_epoch_finished=[report])
    net.fit(X, y, resume=out / "checkpoint.pt" if "--resume" in sys.argv else None)
    if getattr(net, "interrupted_", False):
        print(f"interrupted after epoch {len(net.history)}", file=sys.stderr)
        return 130
    torch.save(net.module_.state_dict(), out / "final.pt")
    records = [{k: v for k, v in e.items() if k != "dur"} for e in net.history]
    (out / "history.json").write_text(json.dumps(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
