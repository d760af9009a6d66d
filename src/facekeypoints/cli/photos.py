"""``predict-photos`` (keypoints of the faces in photos) and ``export`` (a model to ONNX)."""
from __future__ import annotations

import argparse
import glob
import json
import sys
from pathlib import Path

from ._common import CLIError, add_command, check_file, one_line, output_path

__all__ = ["add_predict_photos", "add_export", "cmd_predict_photos", "cmd_export",
           "photo_files"]

_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
             ".gif"}


def photo_files(items):
    """The photo paths that files, folders (their image files) and glob patterns name.

    Parameters
    ----------
    items : list of str
        Command-line arguments.

    Returns
    -------
    list of pathlib.Path
        In the order given (folders and globs sorted); a name that matches nothing stays in
        the list, so that it is reported as unreadable.
    """
    out = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            out += sorted(p for p in path.iterdir() if p.suffix.lower() in _SUFFIXES)
        elif not path.exists() and glob.has_magic(item):
            out += sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file())
        else:
            out.append(path)
    return out


def _is_model(item):
    path = Path(item)
    return (item == "pretrained" or path.suffix.lower() in (".onnx", ".pt")
            or (path.is_dir() and (path / "model.pt").exists()))


def _draw(path, faces, out_dir):
    from PIL import Image, ImageDraw, ImageOps

    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img).convert("RGB")
    draw = ImageDraw.Draw(img)
    r = max(2, round(max(img.size) / 300))
    for face in faces:
        b = face.box
        draw.rectangle([b.x, b.y, b.x + b.width, b.y + b.height], outline=(0, 255, 0),
                       width=max(1, r // 2))
        for name, (x, y) in zip(face.names, face.keypoints):
            colour = ((255, 60, 60) if name.startswith("left") else
                      (60, 140, 255) if name.startswith("right") else (255, 220, 0))
            draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
    from .._safe_io import atomic_write

    target = Path(out_dir) / (Path(path).stem + "_keypoints.png")
    atomic_write(target, lambda f: img.save(f, format="PNG"))   # never half a drawing
    return target


def cmd_predict_photos(args: argparse.Namespace) -> int:
    """Find the faces in photos and predict their keypoints, in each photo's own pixels.

    One row per face: the file, the face's index in it, its box and score, and the
    keypoints by name (x, y in photo pixels). Files that cannot be read are named on
    stderr and skipped; the exit status is then 1. With --draw DIR, each photo is drawn
    with its boxes and keypoints into DIR. MODEL may be a run directory, a model.pt file,
    an .onnx export (no torch needed) or 'pretrained' (the default: the net shipped in the
    package, trained on synthetic faces only).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.

    Returns
    -------
    int
        0, or 1 when some files could not be read.
    """
    from tqdm import tqdm

    from ..photos import PhotoError, keypoint_model, predict_photo

    items = list(args.photos)
    model_arg = args.model
    if model_arg is None:
        model_arg = items.pop(0) if _is_model(items[0]) and len(items) > 1 else "pretrained"
    if model_arg != "pretrained" and not Path(model_arg).exists():
        raise CLIError(f"no model at {model_arg} (a run directory, model.pt, .onnx file or "
                       "'pretrained')")
    if model_arg.lower().endswith(".onnx"):
        check_file(model_arg, "ONNX file")
    files = photo_files(items)
    if not files:
        raise CLIError("no photos: the folders and patterns given hold no image files")
    out = output_path(args.output, "-o")
    if out.suffix.lower() not in (".csv", ".json"):
        raise CLIError(f"-o {out}: give a .csv or .json file name")
    draw_dir = output_path(args.draw, "--draw", directory=True) if args.draw else None
    model = keypoint_model(model_arg)
    rows, failed = [], []
    names = None
    for path in tqdm(files, desc="photos", unit="photo", disable=args.quiet or None,
                     file=sys.stderr):
        try:
            faces = predict_photo(model, path, refine=args.refine)
        except (PhotoError, OSError) as exc:
            failed.append(path)
            tqdm.write(f"skipped {path}: {one_line(exc)}", file=sys.stderr)
            continue
        for i, face in enumerate(faces):
            names = face.names
            rows.append({"file": str(path), "face": i, **face.to_dict()})
        if draw_dir is not None:
            _draw(path, faces, draw_dir)
    from .._safe_io import atomic_write, write_text

    if out.suffix.lower() == ".json":
        write_text(out, json.dumps(rows, indent=1) + "\n")
    else:
        import csv

        def write_rows(f):
            writer = csv.writer(f)
            header = ["file", "face", "box_x", "box_y", "box_width", "box_height", "score"]
            header += [f"{n}_{a}" for n in (names or ()) for a in "xy"]
            writer.writerow(header)
            for r in rows:
                b = r["box"]
                writer.writerow([r["file"], r["face"], *(f"{b[k]:.2f}" for k in
                                                          ("x", "y", "width", "height")),
                                 f"{b['score']:.3f}",
                                 *(f"{v:.2f}" for xy in r["keypoints"].values() for v in xy)])

        atomic_write(out, write_rows, text=True)
    n_photos = len(files) - len(failed)
    print(f"{len(rows)} faces in {n_photos} photos -> {out}"
          f"{f'; drawings in {draw_dir}/' if draw_dir else ''}")
    if failed:
        print(f"{len(failed)} of {len(files)} files could not be read: "
              f"{', '.join(map(str, failed[:5]))}{' ...' if len(failed) > 5 else ''}",
              file=sys.stderr)
        return 1
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Export a model to ONNX: a dynamic batch axis, plain and flip-TTA outputs, and the
    keypoint names, flip pairs, input scaling and crop calibration in its metadata.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.

    Returns
    -------
    int
        0.
    """
    from ..export import export_onnx
    from ..photos import keypoint_model

    if args.model != "pretrained" and not Path(args.model).exists():
        raise CLIError(f"no model at {args.model} (a run directory, model.pt or 'pretrained')")
    if args.model.lower().endswith(".onnx"):
        raise CLIError(f"{args.model} is already an ONNX file")
    out = output_path(args.output, "-o")
    net = keypoint_model(args.model)
    export_onnx(net, out, source=str(args.model))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB; input faces (n, 1, 96, 96) in "
          "[0, 1]; outputs keypoints and keypoints_tta)")
    return 0


def add_predict_photos(sub: argparse._SubParsersAction) -> None:
    """Register ``predict-photos``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers`` returned.
    """
    p = add_command(sub, "predict-photos", cmd_predict_photos,
                    "keypoints of the faces in photos (CSV or JSON, drawings)",
                    epilog="example:\n  facekeypoints predict-photos photos/ -o faces.csv "
                           "--draw drawn/\n  facekeypoints predict-photos model.onnx "
                           "'shots/*.jpg' -o faces.json")
    p.add_argument("photos", nargs="+", metavar="PHOTO",
                   help="optionally the model first (a run directory, model.pt, an .onnx "
                        "export or 'pretrained', the default), then photo files, folders of "
                        "photos, or glob patterns")
    p.add_argument("--model", metavar="MODEL",
                   help="the model, instead of giving it first")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="faces.csv (one row per face) or faces.json")
    p.add_argument("--draw", metavar="DIR", help="draw boxes and keypoints into DIR")
    p.add_argument("--refine", action="store_true",
                   help="a second pass on a crop re-centred and levelled on the first pass")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_export(sub: argparse._SubParsersAction) -> None:
    """Register ``export``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers`` returned.
    """
    p = add_command(sub, "export", cmd_export, "export a model to ONNX",
                    epilog="example:\n  facekeypoints export runs/modern -o modern.onnx")
    p.add_argument("model", metavar="MODEL",
                   help="a run directory, a model.pt file, or 'pretrained'")
    p.add_argument("-o", "--output", required=True, metavar="FILE.onnx")
