"""A lecture's timeline: from the stored events of its devices to bins of "how the room was".

Three steps, each in its own module: the faces' stories from the stored rows (``stories``), the bins
they give under ``[privacy]`` (``binning``), and the moments that stand out (``moments``). Per bin
(``bin_s``, from the lecture's start):
- ``faces``: mean faces present (present face time / bin length);
- ``attentive_share``, ``looking_away_share``, ``eyes_closed_share``: shares of present face time;
- ``absent_share``: the share of the lecture's peak attendance not present in the bin (faces that
  left the room, counted without identities: per-session track numbers come and go);
- ``emotion_shares``: shares of attentive face time with a smoothed emotion, per label;
- ``blinks_per_min``: blinks per face-minute, from the devices' summaries (spread over each
  summary's window);
- ``devices``: how many devices had a face present in the bin, ``devices_withheld`` how many of
  them ``min_faces`` left out of its shares.
A bin with no face time has null shares.
"""

from __future__ import annotations

from typing import Any

from .binning import NICE_BINS_S, Grid, Tally, tally_bins
from .moments import moments
from .privacy import Privacy
from .stories import Rows, build_stories, heard_until

LOOKBACK_S = 1800.0  # events this long before a lecture's start give the state its faces start in
MAX_LECTURE_S = 7 * 86400.0  # a lecture's timeline covers at most a week from its start
OPEN = Privacy()  # emotion on, nothing withheld: tests and benchmarks that ask for no [privacy]
TARGET_BINS = 40  # about this many columns: a 15-second recording is not one 60 s bin, a day not 1,440


def auto_bin_s(span_s: float) -> float:
    """The shortest round bin that gives a lecture of ``span_s`` seconds no more than ``TARGET_BINS``."""
    return next((b for b in NICE_BINS_S if span_s / b <= TARGET_BINS), NICE_BINS_S[-1])


def lecture_timeline(store, lecture: dict[str, Any], bin_s: float, now: float, per_device: bool = False,
                     privacy: Privacy = OPEN) -> dict[str, Any]:
    """The whole answer for one lecture: its bins (and each device's, if asked) and its moments, as
    ``privacy`` lets them be shown."""
    start = float(lecture["start"])
    end = float(lecture["end"]) if lecture["end"] is not None else max(start, now)
    end = min(end, start + MAX_LECTURE_S)  # a lecture left live (or dated 1970) is not years of bins
    devices = list(lecture["devices"])
    rows = Rows.of(store.timeline_rows(devices, start - LOOKBACK_S, end, privacy.timeline_kinds(), lecture["id"]))
    stories = build_stories(rows, heard_until(store.presence(devices, lecture["id"]), end))
    offset = float(lecture.get("video_offset_s") or 0.0)
    pool = bool(lecture.get("recorded"))
    min_faces = privacy.min_faces
    tally = Tally.of(stories, Grid(start, end, bin_s))
    timeline = privacy.shown_bins(tally_bins(tally, range(len(tally.devices)), offset, min_faces, pool))
    # moments are found at the lecture's own bin length, whatever bins the page shows: a teacher who
    # changes the bin length sees the same moments
    moment_bin_s = auto_bin_s(end - start)
    if moment_bin_s == bin_s:
        at_moment_bins = timeline
    else:
        coarse = Tally.of(stories, Grid(start, end, moment_bin_s))
        at_moment_bins = privacy.shown_bins(tally_bins(coarse, range(len(coarse.devices)), offset, min_faces, pool))
    found = privacy.shown_moments(moments(at_moment_bins))
    found["rules"]["bin_s"] = moment_bin_s
    out: dict[str, Any] = {"lecture": lecture, "bin_s": bin_s, "start": start, "end": end, "bins": timeline,
                           "moments": found, "privacy": privacy.as_dict()}
    if per_device:
        row = {d: i for i, d in enumerate(tally.devices)}
        out["per_device"] = {  # each device alone: a device with no stories has only empty bins
            d: privacy.shown_bins(tally_bins(tally, [row[d]] if d in row else [], offset, min_faces, False))
            for d in devices}
    return out
