"""Train the pretrained net shipped in the package: the ``modern`` preset on the embedded faces.

Run from the repository root (about 4-8 minutes on a 2-core CPU)::

    .venv/bin/python scripts/train_pretrained.py

It writes ``src/facekeypoints/_pretrained/modern.pt`` (weights + JSON config, a
facekeypoints model file) and ``modern.json`` next to it: the seed, the command, the data hash
(the same ``sha256`` over the training arrays that ``run.json`` records), the epochs, the
validation RMSE in pixels and the face-crop calibration used by ``predict_photo``.
Same seed, same data, same machine: the same weights.
"""
from __future__ import annotations

import argparse
import json
import pickle
import platform
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "facekeypoints" / "_pretrained"


def embedded_calibration(X, y, n=400, seed=0):
    """The detector box -> training crop calibration, measured on embedded faces.

    Each of ``n`` faces is enlarged 2-4x (bicubic) and pasted at a random offset into a
    picture of its median grey, 160 px larger; ``estimate_calibration`` compares the
    detector's box with the crop that puts the face's true keypoints on the mean ones.
    """
    import cv2
    import numpy as np

    from facekeypoints.photos import estimate_calibration

    mean = y.mean(0).reshape(-1, 2) * 48 + 48
    rng = np.random.default_rng(seed)
    images, kps = [], []
    for i in range(n):
        k = rng.uniform(2, 4)
        side = int(round(96 * k))
        face = cv2.resize(X[i, 0], (side, side), interpolation=cv2.INTER_CUBIC)
        canvas = np.full((side + 160, side + 160), float(np.median(X[i, 0])), np.float32)
        ox, oy = rng.integers(0, 160, 2)
        canvas[oy:oy + side, ox:ox + side] = face
        images.append(np.clip(canvas, 0, 1))
        kps.append((y[i].reshape(-1, 2) * 48 + 48) * side / 96 + [ox, oy])
    cal, found = estimate_calibration(images, kps, mean)
    cal["mean_keypoints"] = [[round(float(a), 2), round(float(b), 2)] for a, b in mean]
    return cal, found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--calibrate-only", action="store_true",
                        help="only (re)measure the crop calibration into an existing JSON")
    args = parser.parse_args(argv)
    if args.calibrate_only:
        import facekeypoints as fk

        X, y = fk.load2d()
        record = args.out / "modern.json"
        info = json.loads(record.read_text())
        info["photo_calibration"], info["calibration_faces"] = embedded_calibration(X, y)
        record.write_text(json.dumps(info, indent=2) + "\n")
        print(json.dumps(info, indent=2))
        return

    import torch

    import facekeypoints as fk
    from facekeypoints.cli.training import data_digest

    torch.set_num_threads(2)
    X, y = fk.load2d()
    net = fk.presets.modern(max_epochs=args.epochs, random_state=args.seed, verbose=1,
                            device="cpu")
    args.out.mkdir(parents=True, exist_ok=True)
    fk.save_model(net.initialize(), args.out / "modern.pt", history=False)   # fails early
    started = time.time()
    net.fit(X, y)
    seconds = time.time() - started
    with open(args.out / "modern.pkl", "wb") as f:      # a fallback if saving fails
        pickle.dump(net, f, -1)
    fk.save_model(net, args.out / "modern.pt", history=True)
    (args.out / "modern.pkl").unlink()
    history = net.train_history_
    last = history[-1]
    info = {
        "preset": "modern",
        "epochs": len(history),
        "seed": args.seed,
        "command": "python scripts/train_pretrained.py " + shlex.join(argv or sys.argv[1:]),
        "data": "embedded synthetic faces (fk.load2d(), complete rows)",
        "generator_version": fk.synthetic.GENERATOR_VERSION,
        "faces": int(len(X)),
        "data_sha256": data_digest(X, y),
        "valid_rmse_px": last.get("valid_rmse_px", (last["valid_loss"] ** 0.5) * 48),
        "valid_loss": last["valid_loss"],
        "train_seconds": round(seconds, 1),
        "torch": torch.__version__,
        "facekeypoints": fk.__version__,
        "python": platform.python_version(),
    }
    info["photo_calibration"], info["calibration_faces"] = embedded_calibration(X, y)
    (args.out / "modern.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
