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


def astronaut_gray() -> np.ndarray:
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)


def landmarks_or_skip(name: str):
    """The named landmark model, or the test skipped with the install fix where it is missing."""
    from emocast.device.perception.detectors import DetectorUnavailable
    from emocast.device.perception.landmarks import make_landmarks

    try:
        return make_landmarks(name)
    except DetectorUnavailable as exc:
        pytest.skip(str(exc))


@pytest.mark.parametrize("model", ["facemesh", "dlib"])
def test_real_landmarks_on_the_astronaut(model):
    landmarks = landmarks_or_skip(model)
    gray = astronaut_gray()
    lm = landmarks.predict(gray, (179, 83, 88, 88))
    assert lm.shape == (68, 2)
    assert 170 < lm[30, 0] < 280 and 80 < lm[30, 1] < 200  # nose tip inside the face
    pose = head_pose(lm, camera_matrix(gray.shape[1], gray.shape[0]))
    assert pose is not None and abs(pose.yaw) < 20 and abs(pose.pitch) < 25  # a portrait facing the camera
    right, left = eye_openness(lm)
    assert 0.18 < right < 0.45 and 0.18 < left < 0.45  # eyes open


def test_face_mesh_points_stand_where_dlibs_do():
    """The 68 points taken from the mesh sit on dlib's: eyes, nose and mouth within a tenth of the
    eye distance on a real face (the jaw is drawn differently by the two models, within a fifth)."""
    mesh, dl = landmarks_or_skip("facemesh"), landmarks_or_skip("dlib")
    gray = astronaut_gray()
    a, b = mesh.predict(gray, (179, 83, 88, 88)), dl.predict(gray, (179, 83, 88, 88))
    iod = np.linalg.norm(b[36:42].mean(0) - b[42:48].mean(0))
    err = np.linalg.norm(a - b, axis=1) / iod
    assert np.median(err[27:68]) < 0.1 and err[27:68].max() < 0.2, err.round(3)
    assert np.median(err[0:17]) < 0.2, err.round(3)


def test_face_mesh_reads_a_leaning_face_turned_upright_by_the_previous_roll():
    """A face leaning 30 degrees: given the roll (as the track's previous pose gives it) the mesh
    reads it as it reads the upright face, and the pose solved from it has that roll."""
    mesh = landmarks_or_skip("facemesh")
    gray = astronaut_gray()
    box = (179, 83, 88, 88)
    centre = (box[0] + box[2] / 2, box[1] + box[3] / 2)
    turn = cv2.getRotationMatrix2D(centre, -30.0, 1.0)  # OpenCV: negative angle turns clockwise
    leaning = cv2.warpAffine(gray, turn, (gray.shape[1], gray.shape[0]))
    cam = camera_matrix(gray.shape[1], gray.shape[0])
    upright = mesh.predict(gray, box)
    turned = mesh.predict(leaning, box, roll=30.0)
    back = cv2.invertAffineTransform(turn)
    restored = turned @ back[:, :2].T + back[:, 2]  # the leaning face's points, turned back
    iod = np.linalg.norm(upright[36:42].mean(0) - upright[42:48].mean(0))
    assert np.median(np.linalg.norm(restored - upright, axis=1)) / iod < 0.05
    pose = head_pose(turned, cam)
    assert pose is not None and 22 < pose.roll < 38
    assert abs(np.mean(eye_openness(turned)) - np.mean(eye_openness(upright))) < 0.04


def test_face_mesh_says_how_sure_it_is_that_the_box_holds_a_face():
    mesh = landmarks_or_skip("facemesh")
    gray = astronaut_gray()
    assert mesh.read(gray, (179, 83, 88, 88)).presence > 0.9
    assert mesh.read(gray, (300, 380, 100, 100)).presence < 0.5  # the suit and the flag, no face


def test_a_missing_landmark_model_gives_way_to_the_other_then_fails_naming_both_fixes(monkeypatch, tmp_path):
    from emocast.device.perception import face_reading, landmarks
    from emocast.device.perception.detectors import DetectorUnavailable

    monkeypatch.setattr(landmarks, "model_dir", lambda: tmp_path)  # Face Mesh's file is not there
    try:
        got = face_reading.load_landmarks("facemesh")
    except DetectorUnavailable:
        got = None
    if got is not None:
        assert got.name == "dlib"
    monkeypatch.setattr(landmarks, "default_predictor_path",
                        lambda: (_ for _ in ()).throw(DetectorUnavailable("pip install 'emocast[dlib]'")))
    with pytest.raises(DetectorUnavailable, match="face_landmark.tflite") as info:
        face_reading.load_landmarks("facemesh")
    assert "no landmark model" in str(info.value)
