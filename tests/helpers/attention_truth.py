"""What the unit and integration tests of attention truth share."""

from __future__ import annotations

DWELL = {"attentive": 0.3, "looking_away": 1.5, "eyes_closed": 1.0, "absent": 2.0}
