"""From Kaggle files to a submission: load -> train -> save -> load safely -> predict -> write.

Run from the repository root (about 3-4 minutes on a 2-core CPU):

    .venv/bin/python examples/kaggle_submission.py
    .venv/bin/python examples/kaggle_submission.py --data-dir ~/kaggle/facial-keypoints \\
        --epochs 400                                   # Kaggle's real files; GPU advised

Without --data-dir it uses the embedded synthetic files, which have Kaggle's format exactly
(training.csv, test.csv, IdLookupTable.csv; generated into the cache on first use). It
trains net4 on every complete face for 12 epochs by default (a net4 epoch on 2,125 faces
takes about 5 s on an otherwise idle 2-core CPU), saves the model as weights + JSON (no
pickle), loads it back with fk.load_model, predicts test.csv and writes submission.csv in
Kaggle's RowId,Location format. The same three steps from a shell:

    facekeypoints train net4 --max-epochs 12 --out runs/net4
    facekeypoints predict runs/net4 --test test.csv --lookup IdLookupTable.csv -o submission.csv

Outputs go to --out (default runs/examples/kaggle_submission, ignored by git): model.pt,
submission.csv and test_predictions.png.
"""
import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

import facekeypoints as fk
from facekeypoints.plots import plot_predictions
from facekeypoints.reports import keypoint_errors


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path,
                        help="folder with Kaggle's training.csv, test.csv, IdLookupTable.csv "
                             "(default: the embedded synthetic ones)")
    parser.add_argument("--epochs", type=int, default=12, help="net4 epochs (default 12)")
    parser.add_argument("--out", type=Path, default=Path("runs/examples/kaggle_submission"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    if args.data_dir:
        files = {"training": args.data_dir / "training.csv", "test": args.data_dir / "test.csv",
                 "lookup": args.data_dir / "IdLookupTable.csv"}
    else:
        files = fk.synthetic.ensure_default_dataset(verbose=True)
    for kind, path in files.items():
        print(f"{kind:>9}: {path}")

    # 1. load: complete rows only, X in [0, 1] as (n, 1, 96, 96), y scaled to [-1, 1]
    X, y = fk.load2d(files["training"])
    print(f"\n{len(X)} complete training faces")

    # 2. train
    net = fk.presets.net4(max_epochs=args.epochs, verbose=1, random_state=0)
    start = time.perf_counter()
    net.fit(X, y)
    print(f"trained in {time.perf_counter() - start:.0f} s")
    _, (X_valid, y_valid) = net.train_valid_split(X, y)
    errors = keypoint_errors(y_valid, net.predict(X_valid))
    print(f"validation RMSE {errors.loc['overall', 'rmse']:.2f} px; worst keypoints:\n"
          + errors.drop(index="overall")["rmse"].nlargest(3).round(2).to_string())

    # 3. save as weights + JSON config, and load it back without unpickling anything
    model_path = fk.save_model(net, args.out / "model.pt")
    loaded = fk.load_model(model_path)
    same = np.allclose(loaded.predict(X_valid[:16]), net.predict(X_valid[:16]), atol=1e-5)
    print(f"\nsaved {model_path}; reloaded with fk.load_model, same predictions: {same}")

    # 4. predict the test faces (file order) and write the submission
    X_test, _ = fk.load2d(files["test"], test=True)
    y_test = loaded.predict(X_test)           # scaled units; write_submission converts
    submission = fk.write_submission(y_test, files["lookup"], args.out / "submission.csv")
    table = pd.read_csv(submission)
    print(f"wrote {submission}: {len(table)} rows for {len(X_test)} test faces, "
          f"Location {table['Location'].min():.1f} .. {table['Location'].max():.1f} px")
    print(table.head(5).to_string(index=False))

    fig = plot_predictions(X_test[:8], y_test[:8], title="test faces: predicted keypoints")
    fig.savefig(args.out / "test_predictions.png", dpi=90)
    print(f"wrote {args.out / 'test_predictions.png'}")


if __name__ == "__main__":
    main()
