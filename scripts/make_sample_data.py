"""Regenerate data/sample/: a small synthetic Kaggle-format data set shipped in the repository.

    python scripts/make_sample_data.py [--out data/sample] [--seed 42] [--n-train 40] [--n-test 8]

The files (training.csv, test.csv, IdLookupTable.csv) have the format and the gap pattern of
the Kaggle files; each image row is about 33 KB of text, so the sample is kept small
(about 1.6 MB).  The same arguments give byte-identical files.
"""
from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from facekeypoints import synthetic  # installed by scripts/setup.sh (pip install -e .)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "data" / "sample")
    ap.add_argument("--seed", type=int, default=synthetic.DEFAULT_SEED)
    ap.add_argument("--n-train", type=int, default=40)
    ap.add_argument("--n-test", type=int, default=8)
    args = ap.parse_args(argv)
    paths = synthetic.write_dataset(args.out, seed=args.seed, n_train=args.n_train,
                                    n_test=args.n_test)
    for name, path in paths.items():
        print(f"{name:9s} {path}  {path.stat().st_size / 1e6:.2f} MB")
    print(synthetic.summarize(paths["training"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
