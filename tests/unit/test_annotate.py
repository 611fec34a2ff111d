"""What was read, drawn on the frames: analyze --annotate writes a playable video of every frame with the
overlay; run --preview is refused where no window can open; the drawing itself on a blank frame."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from emocast.cli import main
from emocast.contract.palette import state_colour
from emocast.core.errors import ExitCode
from emocast.device.annotate import bgr, draw, emotion_text, pose_axes
from emocast.device.perception.stages.record import LatestRecords


def frames_of(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        out.append(img)
    cap.release()
    return out


def test_annotate_writes_every_frame_with_the_faces_drawn(demo_clip, tmp_path):
    out, records = tmp_path / "annotated.mp4", tmp_path / "records.jsonl"
    assert main(["analyze", str(demo_clip), "--annotate", str(out), "--out", str(records), "--quiet"]) == 0
    original, annotated = frames_of(demo_clip), frames_of(out)
    assert len(annotated) == len(original) > 0 and annotated[0].shape == original[0].shape
    assert not list(tmp_path.glob("*.partial*"))
    recs = [json.loads(line) for line in records.read_text().splitlines()]
    assert recs
    rec = next(r for r in recs if r["attention"] == "attentive")
    x, y, w, h = rec["box"]
    img, src = annotated[rec["frame"]].astype(int), original[rec["frame"]].astype(int)
    # the box's left edge is drawn in the attentive colour (the codec blurs it)
    colour = np.array(bgr(state_colour("attentive")))
    edge = slice(y + h // 4, y + 3 * h // 4), slice(x, x + 2)
    assert np.abs(img[edge] - colour).sum(axis=-1).mean() < 0.5 * np.abs(src[edge] - colour).sum(axis=-1).mean()
    assert np.abs(img - src).mean() > np.abs(src[:, :1] - src[:, :1]).mean()  # something was drawn
    # outside every face and its labels the picture is the clip's own
    assert np.abs(img[-20:, :20] - src[-20:, :20]).mean() < 12


def test_annotate_refuses_a_photo_and_an_unknown_container(tmp_path):
    photo = tmp_path / "face.png"
    cv2.imwrite(str(photo), np.full((64, 64, 3), 128, np.uint8))
    assert main(["analyze", str(photo), "--annotate", str(tmp_path / "x.mp4"), "--quiet"]) == ExitCode.USAGE
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 64))
    for _ in range(3):
        writer.write(np.zeros((64, 64, 3), np.uint8))
    writer.release()
    assert main(["analyze", str(video), "--annotate", str(tmp_path / "x.gif"), "--quiet"]) == ExitCode.USAGE
    assert not (tmp_path / "x.mp4").exists() and not (tmp_path / "x.gif").exists()


def test_a_failed_analysis_leaves_no_annotated_file(tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    out = tmp_path / "annotated.mp4"
    assert main(["analyze", str(broken), "--annotate", str(out), "--quiet"]) == ExitCode.SOURCE
    assert not out.exists() and not list(tmp_path.glob("*.partial*"))


def test_preview_is_refused_without_a_display(monkeypatch, tmp_path, caplog):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    code = main(["run", "--source", "demo", "--preview", "--duration", "1", "--outbox", str(tmp_path / "o.sqlite")])
    assert code == ExitCode.USAGE
    assert "--preview needs a local window" in caplog.text
    assert not (tmp_path / "o.sqlite").exists()  # refused before anything was opened


def test_the_overlay_draws_state_reason_emotion_pose_and_eyes():
    img = np.zeros((300, 400, 3), np.uint8)
    rec = {"t": 0.0, "track": 3, "box": [100, 100, 120, 120], "attention": "looking_away", "reason": "gaze",
           "head_pose": {"yaw": 30.0, "pitch": 0.0, "roll": 0.0}, "eye_openness": 0.5, "eyes_closed": False,
           "emotion": "happy", "probs": {"happy": 0.8, "neutral": 0.2}, "emotion_skipped": None,
           "emotion_unsure": False}
    draw(img, [rec])
    assert (img[130:190, 100] == bgr(state_colour("looking_away"))).all()  # the box's left edge
    assert img[60:100, 100:220].max() > 240  # white label text above the box
    bar = img[100:220, 226:229]
    assert (bar[-55:] > 200).all() and (bar[5:50] < 100).all()  # half open: the lower half of the bar filled
    assert emotion_text(rec) == "happy 0.80"
    assert emotion_text({**rec, "emotion_unsure": True}) == "unsure"
    assert emotion_text({**rec, "emotion_skipped": "turned"}) == "emotion: turned"
    assert emotion_text({k: v for k, v in rec.items() if not k.startswith("emotion") and k != "probs"}) is None


@pytest.mark.parametrize(("yaw", "pitch"), [(0.0, 0.0), (40.0, 0.0), (0.0, 30.0)])
def test_pose_axes_turn_with_the_head(yaw, pitch):
    x_axis, y_axis, z_axis = pose_axes(yaw, pitch, 0.0, 100.0)
    assert np.allclose(np.linalg.norm(x_axis), 100.0 * np.cos(np.radians(yaw)), atol=1e-6)
    if yaw == pitch == 0.0:
        assert np.allclose(z_axis, 0.0)  # a frontal face's nose axis points at the camera: a dot
    elif yaw:
        assert abs(z_axis[0]) == pytest.approx(100 * np.sin(np.radians(40)))  # the nose swings sideways
    else:
        assert abs(z_axis[1]) == pytest.approx(100 * np.sin(np.radians(30)))  # and up or down


def test_a_face_stays_drawn_until_it_is_absent():
    overlay = LatestRecords(absent_s=2.0)
    assert len(overlay.update(0.0, [{"t": 0.0, "track": 1}])) == 1
    assert len(overlay.update(1.9, [])) == 1 and overlay.update(2.0, []) == []
