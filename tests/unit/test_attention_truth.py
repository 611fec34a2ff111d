"""Attention against people: the scorer on a hand-made label file, and the defaults on the shared labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emocast.core.errors import ExitCode
from emocast.device.attention_truth import (
    ClipLabels,
    Interval,
    LabelError,
    Totals,
    device_states,
    load_labels,
    score_clip,
)

DWELL = {"attentive": 0.3, "looking_away": 1.5, "eyes_closed": 1.0, "absent": 2.0}  # the hand case's

def clip(*intervals: tuple[float, float, str], fps: float = 10.0) -> ClipLabels:
    ivs = tuple(Interval(a, b, s) for a, b, s in intervals)
    return ClipLabels("hand.mp4", fps, int(round(ivs[-1].end * fps)), ivs)


def test_the_scorer_counts_frames_by_the_rule():
    """10 fps: attentive 0-3 s, looking_away 3-6 s, a 0.5 s glance (not scored), unsure 6.5-7 s."""
    labels = clip((0, 3, "attentive"), (3, 6, "looking_away"), (6, 6.5, "attentive"), (6.5, 7, "unsure"))
    # the device: attentive until 4.4 s (the dwell of 1.5 + 0.5 after 3.0 forgives 3.0-4.9), then away
    # to the end, and one frame eyes_closed at 5.5
    states = ["attentive"] * 44 + ["looking_away"] * 26
    states[55] = "eyes_closed"
    score = score_clip(labels, states, DWELL)
    assert score.scored == 60  # 0-6 s; the short glance and the unsure part are not scored
    assert score.agreed == 59 and score.confusion[("looking_away", "eyes_closed")] == 1
    assert score.confusion[("attentive", "attentive")] == 44  # 30 labelled + 14 forgiven after the change
    # shares over scored frames: people 30/60 attentive; the device 44/60
    assert score.labelled_share == pytest.approx(0.5) and score.device_share == pytest.approx(44 / 60)
    total = Totals([score])
    assert total.recall("looking_away") == pytest.approx(15 / 16)
    assert total.precision("eyes_closed") == 0.0 and total.recall("attentive") == 1.0


def test_a_state_outside_the_forgiven_window_is_wrong():
    labels = clip((0, 3, "attentive"), (3, 6, "looking_away"))
    states = ["attentive"] * 60  # never noticed the look away
    score = score_clip(labels, states, DWELL)
    assert score.agreed == 30 + 20  # 3.0-5.0 forgiven (dwell 1.5 + 0.5), 5.0-6.0 missed
    assert score.share_error == pytest.approx(0.5)


def test_device_states_follow_the_largest_face_and_turn_absent():
    rec = [{"frame": 0, "t": 0.0, "track": 1, "box": [0, 0, 10, 10], "attention": "attentive"},
           {"frame": 0, "t": 0.0, "track": 2, "box": [0, 0, 50, 50], "attention": "looking_away"},
           {"frame": 5, "t": 0.5, "track": 1, "box": [0, 0, 10, 10], "attention": "eyes_closed"}]
    states = device_states(rec, fps=10.0, frames=40, absent_s=2.0)
    assert states[:20] == ["looking_away"] * 20  # the larger face, until it has not been read for 2 s
    assert states[20:25] == ["eyes_closed"] * 5 and states[25:] == ["absent"] * 15


@pytest.mark.parametrize(("content", "key"), [
    ({"a.mp4": {"fps": 0, "frames": 10, "intervals": [{"start": 0, "end": 1, "state": "attentive"}]}}, "a.mp4.fps"),
    ({"a.mp4": {"fps": 10, "frames": 10, "intervals": [{"start": 0, "end": 1, "state": "asleep"}]}},
     "a.mp4.intervals[0].state"),
    ({"a.mp4": {"fps": 10, "frames": 10, "intervals": [{"start": 0, "end": 1, "state": "attentive"},
                                                       {"start": 1.5, "end": 2, "state": "attentive"}]}},
     "a.mp4.intervals[1].start"),
    ({"a.mp4": {"fps": 10, "frames": 10, "intervals": []}}, "a.mp4.intervals"),
])
def test_a_bad_label_file_names_the_file_and_key(tmp_path: Path, content, key):
    path = tmp_path / "labels.json"
    path.write_text(json.dumps(content))
    with pytest.raises(LabelError) as err:
        load_labels(path)
    assert str(path) in str(err.value) and key in str(err.value)
    assert err.value.exit_code == ExitCode.USAGE


def test_a_label_file_that_is_not_json_is_refused(tmp_path: Path):
    path = tmp_path / "labels.json"
    path.write_text("{not json")
    with pytest.raises(LabelError, match="labels.json"):
        load_labels(path)
