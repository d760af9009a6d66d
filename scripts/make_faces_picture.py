"""Regenerate docs/synthetic_faces.png: 16 synthetic faces with their keypoints.

    python scripts/make_faces_picture.py [--out docs/synthetic_faces.png] [--seed 42]

Subject's-left keypoints are red, subject's-right blue, centre points (nose tip, lip
centres) yellow; the subject's left eye is on the image's right, as in the Kaggle data.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
from facekeypoints import synthetic  # installed by scripts/setup.sh (pip install -e .)
from facekeypoints.plots import plot_faces


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "synthetic_faces.png")
    ap.add_argument("--seed", type=int, default=synthetic.DEFAULT_SEED)
    ap.add_argument("--dpi", type=int, default=90)
    args = ap.parse_args(argv)
    images, keypoints = synthetic.render_faces(16, seed=args.seed)
    fig = plot_faces(images, keypoints, ncols=4, figsize=(8, 8.3), markersize=12)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=args.dpi)
    print(f"{args.out}  {args.out.stat().st_size / 1e3:.0f} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
