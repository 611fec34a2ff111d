"""Attention logic with scripted observations: eye baseline and blinks, rules, hysteresis, gaze,
calibration. No camera, no model: every input here is made up to a known answer."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from emocast.device.config import ConfigError, from_mapping
from emocast.device.perception import calibration
from emocast.device.perception.attention import (
    ABSENT,
    ATTENTIVE,
    EYES_CLOSED,
    LID_MIN_SAMPLES,
    LID_SAMPLE_S,
    LOOKING_AWAY,
    AttentionRules,
    AttentionStateMachine,
    EyeMonitor,
)
from emocast.device.perception.gaze import gaze_ratios, iris_position
from tests.support import ScriptedDetector, bodies


# -- eyes ------------------------------------------------------------------------------------------
def test_single_reading_uses_the_absolute_threshold():
    eyes = EyeMonitor(ear_closed=0.21)
    assert eyes.baseline is None
    assert eyes.update(0.15, 0.0) is True
    eyes = EyeMonitor(ear_closed=0.21)
    assert eyes.update(0.30, 0.0) is False
    assert eyes.openness(0.30) == pytest.approx(1.0)  # no baseline yet: against a typical open eye


def test_baseline_is_learned_and_closed_is_relative_to_it():
    eyes = EyeMonitor(ear_closed=0.21, closed_ratio=0.6, min_samples=10)
    for i in range(30):
        eyes.update(0.40 + 0.01 * (i % 3), i * 0.1)  # wide-open eyes
    assert eyes.baseline == pytest.approx(0.42, abs=0.011)
    assert eyes.threshold == pytest.approx(0.6 * eyes.baseline, abs=1e-6)
    assert eyes.update(0.24, 3.1) is True  # above the absolute 0.21, but well under this face's own open eyes
    assert eyes.openness(0.21) == pytest.approx(0.5, abs=0.02)


def test_threshold_stays_sane_for_extreme_baselines():
    narrow = EyeMonitor(ear_closed=0.21, closed_ratio=0.6)
    for i in range(20):
        narrow.update(0.22, i * 0.1)
    assert narrow.threshold == pytest.approx(0.6 * 0.22)
    wide = EyeMonitor(ear_closed=0.21, closed_ratio=0.6)
    for i in range(20):
        wide.update(0.60, i * 0.1)  # a landmark glitch or a wide stare must not make normal eyes "closed"
    assert wide.threshold == pytest.approx(1.25 * 0.21)
    assert wide.update(0.30, 2.1) is False


def test_long_closure_does_not_drag_the_baseline_down():
    eyes = EyeMonitor(ear_closed=0.21, min_samples=10)
    for i in range(20):
        eyes.update(0.33, i * 0.1)
    before = eyes.baseline
    for i in range(300):  # half a minute with the eyes shut
        assert eyes.update(0.08, 2.0 + i * 0.1) is True
    assert eyes.baseline == before


def test_blinks_are_counted_and_long_closures_are_not():
    eyes = EyeMonitor(ear_closed=0.21, blink_max_s=0.5)
    t = 0.0
    script = [0.3] * 5 + [0.1, 0.1] + [0.3] * 5 + [0.12] + [0.3] * 3 + [0.1] * 12 + [0.3] * 3
    for ear in script:
        eyes.update(ear, t)
        t += 0.1
    assert eyes.blinks == 2  # two short closures; the 1.2 s one is an eyes-closed stretch, not a blink


# -- rules -----------------------------------------------------------------------------------------
def test_rules_precedence_and_limits():
    r = AttentionRules()
    assert r.propose(0, 0, False, (0.5, 0.5)) == (ATTENTIVE, "")
    assert r.propose(35, 0, False, (0.5, 0.5)) == (LOOKING_AWAY, "head_pose")
    assert r.propose(0, -25, True, None) == (LOOKING_AWAY, "head_pose")  # pose wins over closed eyes
    assert r.propose(0, 0, True, None) == (EYES_CLOSED, "eyes")
    assert r.propose(0, 0, False, (0.2, 0.5)) == (LOOKING_AWAY, "gaze")
    assert r.propose(0, 0, False, None) == (ATTENTIVE, "")  # unreadable iris: no evidence of looking away
    assert not AttentionRules(gaze=False).gaze_away(0.0, 0.0)


def test_closed_looking_eyes_in_a_face_tilted_down_are_a_downward_glance():
    r = AttentionRules(max_pitch_deg=20)
    assert r.propose(0, -12, True, None) == (LOOKING_AWAY, "gaze")  # beyond half the pitch limit, down
    assert r.propose(0, -8, True, None) == (EYES_CLOSED, "eyes")  # nearly level: closed
    assert r.propose(0, 12, True, None) == (EYES_CLOSED, "eyes")  # tilted up: lids do not drop over the eyes
    assert r.propose(0, -12, False, (0.5, 0.5)) == (ATTENTIVE, "")  # open eyes, head a little down: reading
    cam_above = AttentionRules(pitch_offset_deg=-15)  # pitch judged against where the screen is
    assert cam_above.propose(0, -20, True, None) == (EYES_CLOSED, "eyes")
    assert cam_above.propose(0, -27, True, None) == (LOOKING_AWAY, "gaze")


def test_shut_reading_eyes_whose_lower_lids_did_not_rise_are_a_downward_glance_from_a_level_head():
    r = AttentionRules(max_pitch_deg=20)
    assert r.propose(0, 0, True, None, downcast=True) == (LOOKING_AWAY, "gaze")
    assert r.propose(0, 0, True, None, downcast=False) == (EYES_CLOSED, "eyes")
    assert r.propose(40, 0, True, None, downcast=True) == (LOOKING_AWAY, "head_pose")  # the head still comes first

    def monitor() -> EyeMonitor:
        eyes = EyeMonitor(signal="model", model_closed=0.5, downcast_lid=0.0)
        for i in range(LID_MIN_SAMPLES):  # open eyes, lower lids 0.10 eye widths below the corners
            assert eyes.wants_lid_sample(i * 0.1)
            eyes.update(0.3, i * 0.1, closed_p=0.05, lower_lid=0.10 + 0.002 * (i % 2))
        return eyes

    eyes = monitor()
    assert eyes.lid_baseline == pytest.approx(0.10, abs=0.002)
    assert not eyes.wants_lid_sample(0.5) and eyes.wants_lid_sample(0.4 + LID_SAMPLE_S)  # then twice a second
    for k, lower in enumerate((0.07, 0.068, 0.071)):  # a closure: the lower lid rose to meet the upper one
        assert eyes.update(0.3, 1.0 + 0.1 * k, closed_p=0.97, lower_lid=lower) and not eyes.downcast
    assert not eyes.update(0.3, 1.3, closed_p=0.05, lower_lid=0.10)  # open again: the closure is over
    for k, lower in enumerate((0.105, 0.12, 0.11)):  # shut-reading eyes over lower lids that dropped: a glance
        eyes.update(0.3, 2.0 + 0.1 * k, closed_p=0.9, lower_lid=lower)
        assert eyes.downcast
    eyes.update(0.3, 2.3, closed_p=0.9, lower_lid=None)  # a reading without lids keeps the closure's verdict
    assert eyes.downcast
    eyes.update(0.3, 2.4, closed_p=0.9, lower_lid=0.095)  # the closure's mean decides, not one reading
    assert eyes.downcast  # (0.105 + 0.12 + 0.11 + 0.095) / 4 = 0.1075, still below the baseline
    eyes.update(0.3, 2.5, closed_p=0.9, lower_lid=0.0)
    assert not eyes.downcast  # (0.43 + 0.0) / 5 = 0.086: raised on average, a closure after all

    fresh = EyeMonitor(signal="model", downcast_lid=0.0)  # first seen with the eyes down: no baseline, no cue
    fresh.update(0.3, 0.0, closed_p=0.95, lower_lid=0.2)
    assert fresh.closed and fresh.lid_baseline is None and not fresh.downcast
    off = EyeMonitor(signal="model")  # the cue off: no lid readings asked for or kept
    assert not off.wants_lid_sample(0.0)
    off.update(0.3, 0.0, closed_p=0.05, lower_lid=0.1)
    assert off.lid_baseline is None


def test_rules_hysteresis_and_offsets():
    r = AttentionRules(max_yaw_deg=30)
    assert r.propose(28.5, 0, False, None)[0] == ATTENTIVE
    assert r.propose(28.5, 0, False, None, current=LOOKING_AWAY)[0] == LOOKING_AWAY  # must come back 3 deg more
    assert r.propose(26.0, 0, False, None, current=LOOKING_AWAY)[0] == ATTENTIVE
    cam_above = AttentionRules(pitch_offset_deg=-15)  # a camera above the screen sees readers tilted down
    assert cam_above.propose(0, -30, False, None)[0] == ATTENTIVE
    assert cam_above.propose(0, 10, False, None)[0] == LOOKING_AWAY
    assert cam_above.facing_camera(0, -15) and not cam_above.facing_camera(0, -30)


# -- state machine ---------------------------------------------------------------------------------
def test_one_glitch_does_not_restart_the_dwell():
    sm = AttentionStateMachine({LOOKING_AWAY: 1.5}, grace_s=0.3)
    sm.observe(ATTENTIVE, 0.0)
    for t in (1.0, 1.1, 1.2):
        assert sm.observe(LOOKING_AWAY, t) is None
    assert sm.observe(ATTENTIVE, 1.3) is None  # one borderline reading
    assert sm.observe(LOOKING_AWAY, 1.4) is None
    ch = sm.observe(LOOKING_AWAY, 2.5)
    assert ch is not None and ch.state == LOOKING_AWAY and ch.t == 1.0


def test_a_real_return_restarts_the_dwell():
    sm = AttentionStateMachine({LOOKING_AWAY: 1.5}, grace_s=0.3)
    sm.observe(ATTENTIVE, 0.0)
    sm.observe(LOOKING_AWAY, 1.0)
    for t in (1.3, 1.4, 1.5, 1.7):
        sm.observe(ATTENTIVE, t)  # back for 0.4 s
    assert sm.observe(LOOKING_AWAY, 2.0) is None
    assert sm.observe(LOOKING_AWAY, 2.6) is None  # 1.6 s after the first glance, but only 0.6 s of this one
    ch = sm.observe(LOOKING_AWAY, 3.5)
    assert ch is not None and ch.t == 2.0


def test_reopened_eyes_return_to_attentive_while_gaze_flickers():
    """Eyes reopen after a laugh; gaze readings alternate on/off the screen each frame (30 fps).
    Neither proposal holds still, yet the face has left eyes_closed: attentive within its dwell."""
    sm = AttentionStateMachine({ATTENTIVE: 0.3, LOOKING_AWAY: 1.5, EYES_CLOSED: 1.0}, grace_s=0.3)
    sm.observe(EYES_CLOSED, 0.0)
    t, change = 2.0, None
    for i in range(30):
        t = 2.0 + i / 30
        change = sm.observe(ATTENTIVE if i % 2 == 0 else LOOKING_AWAY, t) or change
        if change:
            break
    assert change is not None and change.state == ATTENTIVE and change.t == 2.0
    assert t - 2.0 <= 0.3 + 1 / 30 + 1e-9


def test_reopened_eyes_that_look_away_leave_eyes_closed_on_the_attentive_dwell():
    """Eyes reopen onto a gaze off the screen: eyes_closed ends once they have been open for the
    attentive dwell (0.3 s), as looking_away, without waiting looking_away's own 1.5 s."""
    sm = AttentionStateMachine({ATTENTIVE: 0.3, LOOKING_AWAY: 1.5, EYES_CLOSED: 1.0}, grace_s=0.3)
    sm.observe(EYES_CLOSED, 0.0)
    assert sm.observe(LOOKING_AWAY, 2.0) is None
    assert sm.observe(LOOKING_AWAY, 2.2) is None
    ch = sm.observe(LOOKING_AWAY, 2.31)
    assert ch is not None and ch.state == LOOKING_AWAY and ch.previous == EYES_CLOSED and ch.t == 2.0
    # from attentive, looking away still needs its own dwell
    sm = AttentionStateMachine({ATTENTIVE: 0.3, LOOKING_AWAY: 1.5, EYES_CLOSED: 1.0}, grace_s=0.3)
    sm.observe(ATTENTIVE, 0.0)
    assert sm.observe(LOOKING_AWAY, 1.0) is None and sm.observe(LOOKING_AWAY, 2.3) is None
    assert sm.observe(LOOKING_AWAY, 2.5) is not None


def test_a_change_of_cue_does_not_restart_the_spell():
    """Eyes shut, then the head turns: one spell away from 1.0, looking_away (it held longest) once
    that has lasted looking away's dwell, with the cue that held longest."""
    sm = AttentionStateMachine({ATTENTIVE: 0.3, LOOKING_AWAY: 1.5, EYES_CLOSED: 1.0}, grace_s=0.3)
    sm.observe(ATTENTIVE, 0.0)
    sm.observe(EYES_CLOSED, 1.0, "eyes")
    for t in (1.2, 1.4, 1.6, 1.8, 2.0, 2.2, 2.4):
        assert sm.observe(LOOKING_AWAY, t, "head_pose") is None
    ch = sm.observe(LOOKING_AWAY, 2.5, "head_pose")
    assert ch is not None and ch.state == LOOKING_AWAY and ch.t == 1.0 and ch.reason == "head_pose"


def alternate(sm: AttentionStateMachine, cues: list[tuple[str, str]], start: float, seconds: float,
              hz: float = 10.0) -> list:
    """Feed ``cues`` in turn at ``hz`` from ``start`` for ``seconds``; the changes."""
    changes = []
    for i in range(int(seconds * hz)):
        state, reason = cues[i % len(cues)]
        ch = sm.observe(state, start + i / hz, reason)
        if ch is not None:
            changes.append(ch)
    return changes


def test_alternating_cues_are_one_spell_away():
    """A glance aside and down under lowered lids: the cue alternates gaze / eyes every reading. The
    spell is reported once it lasts looking away's dwell, as looking_away (shut eyes did not lead)."""
    sm = AttentionStateMachine({ATTENTIVE: 0.3, LOOKING_AWAY: 1.5, EYES_CLOSED: 1.0}, grace_s=0.3)
    sm.observe(ATTENTIVE, 0.0)
    changes = alternate(sm, [(LOOKING_AWAY, "gaze"), (EYES_CLOSED, "eyes")], 1.0, 4.9)
    assert [(c.state, c.t) for c in changes] == [(LOOKING_AWAY, 1.0)]
    assert changes[0].reason == "gaze" and sm.state == LOOKING_AWAY


def test_eyes_crossing_the_centre_do_not_end_a_look_away():
    """Eyes dart side to side, read on the screen for one reading as they cross the centre (lp_d14
    from 15.3 s): a return shorter than the attentive dwell does not end the spell."""
    sm = AttentionStateMachine({ATTENTIVE: 0.3, LOOKING_AWAY: 1.5, EYES_CLOSED: 1.0}, grace_s=0.3)
    sm.observe(ATTENTIVE, 0.0)
    cues = [(LOOKING_AWAY, "gaze"), (LOOKING_AWAY, "gaze"), (ATTENTIVE, "")]
    changes = alternate(sm, cues, 1.0, 2.6)
    assert [(c.state, c.t, c.reason) for c in changes] == [(LOOKING_AWAY, 1.0, "gaze")]
    # and back: attentive outweighing the cues away for longer than its dwell, brief cues away included
    changes = alternate(sm, [(ATTENTIVE, ""), (ATTENTIVE, ""), (LOOKING_AWAY, "gaze")], 3.6, 1.0)
    assert [c.state for c in changes] == [ATTENTIVE] and 3.3 <= changes[0].t <= 3.7


def test_shut_eyes_that_lead_the_spell_are_eyes_closed_and_do_not_flip_on_one_cue():
    sm = AttentionStateMachine({ATTENTIVE: 0.3, LOOKING_AWAY: 1.5, EYES_CLOSED: 1.0}, grace_s=0.3)
    sm.observe(ATTENTIVE, 0.0)
    cues = [(EYES_CLOSED, "eyes")] * 4 + [(LOOKING_AWAY, "gaze")]
    changes = alternate(sm, cues, 1.0, 3.0)
    assert [(c.state, c.t, c.reason) for c in changes] == [(EYES_CLOSED, 1.0, "eyes")]
    # looking away, then eyes and gaze alternating: neither outweighs the other, no flip to eyes_closed
    sm = AttentionStateMachine({ATTENTIVE: 0.3, LOOKING_AWAY: 1.5, EYES_CLOSED: 1.0}, grace_s=0.3)
    sm.observe(ATTENTIVE, 0.0)
    alternate(sm, [(LOOKING_AWAY, "head_pose")], 1.0, 2.0)
    assert sm.state == LOOKING_AWAY
    assert alternate(sm, [(EYES_CLOSED, "eyes"), (LOOKING_AWAY, "gaze")], 3.0, 3.0) == []


def test_return_to_attentive_has_its_own_dwell_and_durations_add_up():
    sm = AttentionStateMachine({ATTENTIVE: 0.3, EYES_CLOSED: 1.0})
    sm.observe(ATTENTIVE, 0.0)
    sm.observe(EYES_CLOSED, 1.0)
    ch = sm.observe(EYES_CLOSED, 2.0)
    assert ch is not None and ch.previous_duration_s == 1.0
    assert sm.observe(ATTENTIVE, 4.0) is None
    ch = sm.observe(ATTENTIVE, 4.35)
    assert ch is not None and ch.state == ATTENTIVE and ch.previous == EYES_CLOSED and ch.previous_duration_s == 3.0
    ch = sm.observe(ABSENT, 9.0)
    assert ch is None  # absent needs its dwell (2 s by default) here; the Analyzer times absence itself


# -- gaze on a drawn eye ---------------------------------------------------------------------------
def drawn_eye(iris_x: float, roll_deg: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A grey face with one almond eye (white sclera, dark iris at ``iris_x`` of the eye width) and
    its six landmarks, rotated by ``roll_deg`` about the eye's centre."""
    img = np.full((200, 240), 150, np.uint8)
    x0, x1, yc, half = 60.0, 180.0, 100.0, 22.0
    lm = np.array([[x0, yc], [x0 + 40, yc - half], [x0 + 80, yc - half], [x1, yc], [x0 + 80, yc + half],
                   [x0 + 40, yc + half]])
    cv2.fillConvexPoly(img, cv2.convexHull(lm.astype(np.int32)), 235)
    cx = x0 + iris_x * (x1 - x0)
    cv2.circle(img, (int(cx), int(yc)), 17, 40, -1)
    cv2.fillConvexPoly(mask := np.zeros_like(img), cv2.convexHull(lm.astype(np.int32)), 255)
    img = np.where(mask > 0, img, 150).astype(np.uint8)  # the iris does not spill over the lids
    if roll_deg:
        rot = cv2.getRotationMatrix2D((120, 100), roll_deg, 1.0)
        img = cv2.warpAffine(img, rot, (240, 200), borderValue=150)
        lm = (np.c_[lm, np.ones(6)] @ rot.T)
    return img, lm


@pytest.mark.parametrize("iris_x", [0.3, 0.5, 0.7])
@pytest.mark.parametrize("roll", [0.0, 15.0])
def test_iris_position_follows_the_iris_and_ignores_roll(iris_x, roll):
    img, lm = drawn_eye(iris_x, roll)
    h, v = iris_position(img, lm)
    assert h == pytest.approx(iris_x, abs=0.06)
    assert v == pytest.approx(0.5, abs=0.12)


def test_gaze_needs_an_open_eye():
    img, lm = drawn_eye(0.5)
    shut = lm.copy()
    shut[[1, 2], 1] = 99.0
    shut[[4, 5], 1] = 101.0
    assert iris_position(img, shut) is None
    full = np.zeros((68, 2))
    full[36:42] = shut
    full[42:48] = shut
    assert gaze_ratios(img, full) is None


@pytest.mark.parametrize("content, message", [
    (None, "not found"),
    ("{not json", "not a readable calibration"),
    (json.dumps({"schema": "other"}), "schema must be"),
    (json.dumps({"schema": calibration.SCHEMA, "yaw_offset_deg": 0}), "missing or malformed key"),
    (json.dumps({"schema": calibration.SCHEMA, "yaw_offset_deg": 0, "pitch_offset_deg": 0,
                 "gaze_h": [0.7, 0.3], "gaze_v": [0, 1]}), "gaze_h must be"),
])
def test_a_bad_calibration_file_is_a_config_error_naming_file_and_key(tmp_path, content, message):
    path = tmp_path / "cal.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message) as err:
        from_mapping({"attention": {"calibration": str(path)}}, origin="kiosk.toml")
    text = str(err.value)
    assert "kiosk.toml" in text and "[attention] calibration" in text and str(path) in text


def test_config_cross_checks_for_attention():
    with pytest.raises(ConfigError, match="gaze_h_min"):
        from_mapping({"attention": {"gaze_h_min": 0.7, "gaze_h_max": 0.6}})
    with pytest.raises(ConfigError, match="blink_max_s"):
        from_mapping({"attention": {"blink_max_s": 1.0, "eyes_closed_s": 0.8}})
    with pytest.raises(ConfigError, match=r"\[attention\] max_yaw_deg"):
        from_mapping({"attention": {"max_yaw_deg": "thirty"}})


# -- absence and track numbers through the Analyzer, with scripted detections ----------------------
def test_short_gaps_keep_the_track_and_long_ones_make_it_absent():
    from emocast.device.perception.capture import Frame
    from emocast.device.perception.pipeline import Analyzer

    cfg = from_mapping({"attention": {"checks": False, "absent_s": 2.0}, "faces": {"detect_hz": 10, "min_hits": 2},
                        "emotion": {"emotion_hz": 0}})
    face = [(100, 100, 80, 80)]
    # seen 0-1 s, a 1 s gap (shorter than absent_s), seen 2-3 s, then gone for good
    script = [face if (t < 10 or 20 <= t < 30) else [] for t in range(60)]
    an = Analyzer(cfg, ScriptedDetector(script), None)
    frame = np.zeros((240, 320, 3), np.uint8)
    events = []
    for i in range(60):
        events.extend(an.process(Frame(frame, i, i / 10, 0.0)))
    att = bodies(events, "attention")
    assert [(b["track"], b["state"]) for b in att] == [(1, ATTENTIVE), (1, ABSENT)]
    assert att[1]["source_t"] == pytest.approx(2.9) and att[1]["previous_duration_s"] == pytest.approx(2.9)
    assert att[1]["reason"] == "lost"
    assert not an.faces.tracker.tracks
