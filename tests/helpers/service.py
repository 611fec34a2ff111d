"""The service and CLI as processes: a config file, the CLI run, events checked against their schemas."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import jsonschema

from emocast.contract.events import SCHEMAS, load_schema
from tests.support import EMOCAST


def config(tmp_path: Path, **sections: dict) -> Path:
    base = {"emotion": {"min_confidence": 0.0}, "mqtt": {"drain_timeout_s": 10.0}}
    for k, v in sections.items():
        base.setdefault(k, {}).update(v)
    lines = []
    for section, values in base.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    p = tmp_path / "emocast.toml"
    p.write_text("\n".join(lines) + "\n")
    return p


def run_cli(args: list[str], timeout: float = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(EMOCAST + args, capture_output=True, text=True, timeout=timeout, env=env)


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return run_cli(list(args), timeout)


def validate(payload: dict) -> None:
    kind = payload["schema"].split(".")[1].split("/")[0]
    assert payload["schema"] == SCHEMAS[kind]
    jsonschema.Draft202012Validator(load_schema(kind)).validate(payload)


def event_payloads(rec, device: str) -> list[dict]:
    out = []
    for topic, payload, _ in rec.messages:
        if topic.startswith(f"emocast/{device}/events/") or topic == f"emocast/{device}/summary":
            out.append(json.loads(payload))
    return out
