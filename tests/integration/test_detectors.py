"""Face detector backends, their union, and BlazeFace on real group photos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from emocast.device.perception.detectors import make_detector
from emocast.device.perception.faces import detect_faces
from tests.helpers.detectors import needs_blazeface
from tests.support import MEDIA, needs_media

# Frontal faces counted by eye in ../shared/media/multiface (every face is 40 px or more).
GROUP_PHOTOS = {"ulfd_10.jpg": 19, "ulfd_6.jpg": 14, "ulfd_9.jpg": 8, "ulfd_2.jpg": 4, "insightface_t1.jpg": 6}


@needs_blazeface
@needs_media("multiface")
@pytest.mark.parametrize("photo, truth", GROUP_PHOTOS.items())
def test_blazeface_finds_the_room_in_group_photos(photo, truth):
    """The aim: 90% of frontal faces of 40 px or more, at most one false face a photo."""
    gray = cv2.cvtColor(cv2.imread(str(MEDIA / "multiface" / photo)), cv2.COLOR_BGR2GRAY)
    boxes = detect_faces(make_detector("blazeface"), gray, 320, 40)
    assert int(np.ceil(0.9 * truth)) <= len(boxes) <= truth + 1
    assert all(min(w, h) >= 28 for _, _, w, h in boxes)


@needs_media("multiface")
def test_haar_at_the_old_default_width_misses_most_of_a_group():
    """Why the default changed: Haar on a frame shrunk to 320 px cannot see 50 px faces."""
    gray = cv2.cvtColor(cv2.imread(str(MEDIA / "multiface" / "ulfd_10.jpg")), cv2.COLOR_BGR2GRAY)
    assert len(detect_faces(make_detector("haar"), gray, 320, 40)) < 0.5 * GROUP_PHOTOS["ulfd_10.jpg"]


@needs_media("multiface")
def test_profile_detector_finds_turned_faces_on_the_whole_frame_both_ways():
    gray = cv2.cvtColor(cv2.imread(str(MEDIA / "multiface" / "insightface_t1.jpg")), cv2.COLOR_BGR2GRAY)
    det = make_detector("profile")
    boxes = detect_faces(det, gray, 640, 40)
    mirrored = detect_faces(det, np.ascontiguousarray(gray[:, ::-1]), 640, 40)
    assert len(boxes) >= 2 and len(boxes) == len(mirrored)  # both mirrors searched: the flipped photo, the same


@needs_blazeface
@needs_media("multiface")
def test_analyze_reads_every_face_of_a_group_photo_once_and_none_from_its_border():
    """analyze pads photos with their replicated edge; a face made of that border is not reported."""
    from pathlib import Path

    from emocast.device.analyze import analyze
    from emocast.device.config import from_mapping

    records: list[dict] = []
    photo = Path(MEDIA / "multiface" / "ulfd_6.jpg")
    analyze(photo, from_mapping({"emotion": {"emotion_hz": 0}}), None, records.append, progress=False)
    assert len(records) == GROUP_PHOTOS["ulfd_6.jpg"]
    h, w = cv2.imread(str(photo)).shape[:2]
    assert all(0 <= x + bw / 2 < w and 0 <= y + bh / 2 < h for x, y, bw, bh in (r["box"] for r in records))
