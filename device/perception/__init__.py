"""Perception: camera frames in, per-face readings and attention/emotion state changes out
(capture, detectors, tracking, landmarks, eyes, pose and gaze, attention rules, emotion, the
per-frame pipeline). Nothing here publishes or stores anything."""
