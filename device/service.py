"""The on-device service: capture thread -> analysis thread -> outbox -> publisher thread.

Shutdown has one order, whatever triggered it (end of file, --duration, SIGTERM, a fatal broker
refusal): stop capture, let analysis finish its frame and write a final summary, give the publisher
``drain_timeout_s`` to empty the outbox, publish ``offline``, disconnect. Whatever is not delivered
stays in the outbox for the next start.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from emocast.contract.events import (
    ABSENT,
    ATTENTIVE,
    DURABLE_KINDS,
    AttentionState,
    Event,
    Info,
    Metrics,
    Summary,
    Topics,
    encode,
    encode_text,
    envelope,
)
from emocast.core.errors import ExitCode

from .. import __version__
from .annotate import Preview
from .config import Config, broker_password, default_state_dir, parse_broker_url
from .delivery.homeassistant import discovery_messages
from .delivery.outbox import Outbox, OutboxError
from .delivery.publish import MqttOptions, Publisher
from .perception.capture import CaptureThread, LatestFrameSlot, open_source
from .perception.detectors import make_detector
from .perception.emotion import EmotionModel, model_path
from .perception.pipeline import Analyzer

log = logging.getLogger(__name__)


@dataclass
class RunOptions:
    print_events: bool = False
    duration_s: float | None = None
    preview: bool = False  # a local window of what is read (annotate.Preview); nothing is written


def cpu_temperature_c() -> float | None:
    """The SoC temperature where the board exposes it (Raspberry Pi, Jetson); None elsewhere."""
    for zone in sorted(Path("/sys/class/thermal").glob("thermal_zone*/temp")):
        try:
            return round(int(zone.read_text().strip()) / 1000.0, 1)
        except (OSError, ValueError):
            continue
    return None


BEHIND_WARN_INTERVAL_S = 600.0


def keeping_up(rates: dict[str, Any]) -> str:
    """The closing line's account of how well the device kept up with its room."""
    def num(key: str) -> str:
        v = rates.get(key)
        return "-" if v is None else f"{v:.3g}"

    text = (f"{num('faces_tracked')} faces tracked, each read {num('attention_reads_per_face_s')} times a second"
            f" for attention")
    if rates.get("emotion_reads_per_face_s") is not None:
        text += f" and {num('emotion_reads_per_face_s')} for emotion"
    return text + f", {num('detections_per_s')} detections a second"


class Service:
    def __init__(self, cfg: Config, opts: RunOptions | None = None, out: TextIO | None = None) -> None:
        self.cfg = cfg
        self.opts = opts or RunOptions()
        self.out = out or sys.stdout
        self.halt = threading.Event()  # stops capture and analysis
        self.pub_stop = threading.Event()  # stops the publisher, after draining
        self.device_id = cfg.device_id
        self.topics = Topics(cfg.mqtt.prefix, self.device_id)
        self.events_written = 0
        self._print_lock = threading.Lock()
        self._analysis_error = False
        self._started = time.monotonic()
        self._counts_at_metrics = (0, 0)  # frames in, frames dropped, at the last metrics
        self._last_behind_warning = float("-inf")
        self._last_slow_warning = float("-inf")
        self._last_t = 0.0  # media time of the last frame analysed
        self.preview: Preview | None = None

    # -- set-up, each failure mapped to its exit code -------------------------------------------------
    def _load_model(self) -> EmotionModel | None:
        if not self.cfg.emotion_on:  # [privacy] emotion = false (or emotion_hz = 0): no model file is opened
            return None
        path = model_path(self.cfg.emotion.model)
        return EmotionModel(path, threads=self.cfg.emotion.threads)

    def _outbox_path(self) -> Path:
        return Path(self.cfg.outbox.path) if self.cfg.outbox.path else default_state_dir() / "outbox.sqlite"

    def _state_envelope(self, state: Info | Metrics) -> dict[str, Any]:
        """info and metrics are not events: they carry the latest event's seq instead of taking one."""
        return envelope(state.kind, state.body(), self.device_id, max(0, self.outbox.next_seq() - 1), time.time())

    def _info(self, model: EmotionModel | None, detector: str = "") -> dict[str, Any]:
        """What the device runs (retained): the model only where emotion is on (``model`` exists then)."""
        on = self.cfg.emotion_on
        emotion = ({"model": model.card.id, "model_sha256": model.card.sha256, "labels": list(model.labels)}
                   if model is not None else {"model": None, "model_sha256": None, "labels": []})
        restarts = self.outbox.seq_restarts()
        return self._state_envelope(Info({
            "version": __version__,
            **emotion,
            **({"seq_restarts": restarts} if restarts else {}),
            "config_digest": self.cfg.digest(),
            "privacy": {"emotion": self.cfg.emotion_on},
            "capabilities": {
                "attention_states": [str(state) for state in AttentionState]
                if self.cfg.attention.checks else [str(ATTENTIVE), str(ABSENT)],
                "attention_checks": self.cfg.attention.checks,
                "gaze": self.cfg.attention.checks and self.cfg.attention.gaze,
                "emotion": on,
                "emotion_hz": self.cfg.emotion.emotion_hz if on else 0.0,
                "detector": detector or self.cfg.faces.detector,  # the one running (after a fallback)
                "summary_s": self.cfg.events.summary_s,
            },
        }))

    def _mqtt_options(self) -> MqttOptions:
        m = self.cfg.mqtt
        broker = parse_broker_url(m.url)
        if m.username:  # the config's user name wins over one in the URL
            broker = dataclasses.replace(broker, username=m.username)
        return MqttOptions(
            broker=broker,
            client_id=m.client_id or f"emocast-{self.device_id}",
            keepalive_s=m.keepalive_s,
            ack_timeout_s=m.ack_timeout_s,
            protocol=m.protocol,
            password=broker_password(self.cfg),
            ca_file=m.ca_file,
            cert_file=m.cert_file,
            key_file=m.key_file,
        )

    def run(self) -> int:
        """Run until the input ends, --duration, a signal or a fatal broker refusal; returns the exit
        code. What cannot start (a missing password file, model, landmark model, source or outbox)
        raises its ``EmocastError`` before anything is opened after it."""
        mqtt_options = self._mqtt_options()  # a missing password file is a config error: before opening anything
        self.preview = Preview(self.cfg.attention.absent_s) if self.opts.preview else None  # refused without a display
        model = self._load_model()
        detector = make_detector(self.cfg.faces.detector)
        analyzer = Analyzer(self.cfg, detector, model, threads=self.cfg.threads)
        s = self.cfg.source
        source = open_source(s.uri, s.width, s.height, s.fps, s.stall_timeout_s)
        source.open()
        lossless = not source.live and not self.cfg.source.realtime
        if not lossless:  # live, or a file paced like a camera: a frame's work is held to its interval
            analyzer.pace(1000.0 / (source.fps or s.fps))
        try:
            self.outbox = Outbox(self._outbox_path(), self.topics, self.cfg.outbox.max_events)
        except OutboxError:
            source.close()
            raise
        info = self._info(model, detector.name)
        retained = []
        if self.cfg.mqtt.homeassistant:
            retained = discovery_messages(self.topics, self.cfg.mqtt.discovery_prefix, __version__, info["model"])
        publisher = Publisher(self.outbox, self.topics, mqtt_options, info, self.pub_stop, retained)
        slot = LatestFrameSlot(lossless=lossless)
        capture = CaptureThread(source, slot, self.halt, loop=self.cfg.source.loop, realtime=self.cfg.source.realtime,
                                backoff_max_s=self.cfg.source.reopen_backoff_max_s)
        analysis = threading.Thread(target=self._analysis_loop, args=(analyzer, slot, capture, publisher),
                                    name="analysis", daemon=True)
        self._install_signals()
        pending = self.outbox.depth()
        log.info("emocast %s on %s: source %s, broker %s, outbox %s (%d pending), %d reading worker%s",
                 __version__, self.device_id, source.name, parse_broker_url(self.cfg.mqtt.url).redacted(),
                 self.outbox.path, pending, analyzer.pool.size, "" if analyzer.pool.size == 1 else "s")
        publisher.start()
        self._started = time.monotonic()
        capture.start()
        analysis.start()
        try:
            self._supervise(analysis, publisher)
        finally:
            self._stop(analysis, capture, slot, publisher, analyzer)
        return self._exit_code(capture, publisher)

    def _supervise(self, analysis: threading.Thread, publisher: Publisher) -> None:
        """Wait for the end of the input, --duration, a signal, or a fatal broker refusal."""
        while analysis.is_alive():
            analysis.join(0.2 if self.preview is None else 0.03)
            if self.preview is not None and not self.preview.pump():
                log.info("the preview window asked to stop")
                self.halt.set()
            if (self.opts.duration_s is not None and not self.halt.is_set()
                    and time.monotonic() - self._started >= self.opts.duration_s):
                log.info("duration of %.1f s reached", self.opts.duration_s)
                self.halt.set()
            if publisher.stats.fatal:
                self.halt.set()

    def _stop(self, analysis: threading.Thread, capture: CaptureThread, slot: LatestFrameSlot,
              publisher: Publisher, analyzer: Analyzer) -> None:
        """The one shutdown order: capture and analysis, then drain, then offline and disconnect."""
        self.halt.set()
        slot.close()
        analysis.join(5.0)
        capture.join(5.0)
        busy = max(1e-9, time.monotonic() - self._started)  # analysis time, before the drain
        drained = self.cfg.mqtt.drain_timeout_s > 0 and publisher.stats.connected and publisher.drain(
            self.cfg.mqtt.drain_timeout_s)
        left = self.outbox.depth()
        self.pub_stop.set()
        publisher.shutdown()
        self.outbox.close()
        later = "" if drained or left == 0 else " (delivered at the next start)"
        analyzer.close()
        if self.preview is not None:
            self.preview.close()
        log.info("stopped: %d frames in, %d analysed in %.1f s (%.1f fps), %d dropped, %d events written, "
                 "%d left in the outbox%s; %s", capture.stats.frames_in, analyzer.frames, busy,
                 analyzer.frames / busy, slot.dropped, self.events_written, left, later,
                 keeping_up(analyzer.take_metrics(self._last_t, run=True)))

    def _exit_code(self, capture: CaptureThread, publisher: Publisher) -> int:
        if publisher.stats.fatal:
            log.error("%s", publisher.stats.fatal)
            return ExitCode.BROKER_REFUSED
        if capture.stats.crashed:
            log.error("capture failed: %s", capture.stats.last_error)
            return ExitCode.SOURCE
        if self._analysis_error:
            return ExitCode.UNEXPECTED
        return ExitCode.OK

    def _analysis_loop(self, analyzer: Analyzer, slot: LatestFrameSlot, capture: CaptureThread,
                       publisher: Publisher) -> None:
        last_metrics = time.monotonic()
        last_t = 0.0
        last_frame_at: float | None = None  # monotonic time of the last frame
        try:
            while not self.halt.is_set():
                frame = slot.get(timeout=0.5)
                now = time.monotonic()
                if frame is not None:
                    last_t, last_frame_at = frame.t, now
                    self._last_t = last_t
                    for event in analyzer.process(frame):
                        self._emit(event, publisher, frame.wall)
                    if self.preview is not None:
                        self.preview.offer(frame.image, frame.t, analyzer.records(frame))
                    if analyzer.summary_due(frame.t):
                        self._emit(self._summary(analyzer, frame.t, slot), publisher, frame.wall)
                elif capture.stats.ended and slot.closed:
                    break
                elif last_frame_at is not None and capture.source.live:
                    # A camera that stopped: media time goes on with the clock, so faces turn absent
                    # and summaries keep coming (saying no face is there) while it is reopened.
                    t = last_t + (now - last_frame_at)
                    for event in analyzer.idle(t):
                        self._emit(event, publisher, time.time())
                    if analyzer.summary_due(t):
                        self._emit(self._summary(analyzer, t, slot), publisher, time.time())
                if now - last_metrics >= self.cfg.events.metrics_s:  # whether frames come or not
                    last_metrics = now
                    t_now = last_t if last_frame_at is None else last_t + (now - last_frame_at)
                    self._publish_metrics(analyzer, slot, capture, publisher, t_now)
            for event in analyzer.flush():  # readings still on the workers
                self._emit(event, publisher, time.time())
            if analyzer.window is not None and analyzer.window.frames:
                self._emit(self._summary(analyzer, last_t, slot, final=True), publisher, time.time())
        except Exception:
            log.exception("analysis failed")
            self._analysis_error = True

    def _summary(self, analyzer: Analyzer, t: float, slot: LatestFrameSlot, final: bool = False) -> Summary:
        return analyzer.take_summary(t, {
            "final": final,
            "dropped_frames": slot.dropped,
            "dropped_events": self.outbox.dropped_total(),
        })

    def _emit(self, event: Event, publisher: Publisher, wall: float) -> None:
        kind = event.kind
        assert kind in DURABLE_KINDS
        payload = self.outbox.append(kind, event.body(), wall)
        if payload is None:  # the disk is full: dropped and counted by the outbox
            return
        self.events_written += 1
        publisher.notify()
        if self.opts.print_events:
            with self._print_lock:
                try:
                    self.out.write(encode_text({"topic": self.topics.for_kind(kind), **payload}) + "\n")
                    self.out.flush()
                except BrokenPipeError:  # `emocast run --print | head -1`: the reader is gone, stop cleanly
                    log.info("stdout was closed by its reader; stopping")
                    self.opts.print_events = False
                    self.out = open(os.devnull, "w")  # noqa: SIM115  (the interpreter flushes stdout at exit)
                    sys.stdout = self.out
                    self.halt.set()

    def _publish_metrics(self, analyzer: Analyzer, slot: LatestFrameSlot, capture: CaptureThread,
                         publisher: Publisher, t: float) -> None:
        # each part reports its own: capture, the frame slot, the analysis stages, the outbox, delivery
        metrics = Metrics.of(capture.stats.metrics(), slot.metrics(), analyzer.take_metrics(t), self.outbox.metrics(),
                             publisher.stats.metrics(), {"cpu_temp_c": cpu_temperature_c()})
        payload = self._state_envelope(metrics)
        publisher.publish_direct(self.topics.for_kind(metrics.kind), encode(payload), qos=0)
        self._warn_if_behind(payload)
        self._warn_if_slow_reads(payload, analyzer)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("frames in %d, analysed %d, dropped %d; stage p50/p95 ms: %s; outbox %d", payload["frames_in"],
                      payload["frames_processed"], payload["frames_dropped"],
                      ", ".join(f"{k} {v['p50']}/{v['p95']}" for k, v in payload["stage_ms"].items()),
                      payload["outbox_depth"])


    def _warn_if_slow_reads(self, m: dict[str, Any], analyzer: Analyzer) -> None:
        """Say so when faces are read under half their targets, naming what makes the room too big:
        the faces, the workers, the frame size. At most every ten minutes."""
        now = time.monotonic()
        if now - self._last_slow_warning < BEHIND_WARN_INTERVAL_S:
            return
        for key, name, target in analyzer.targets():
            rate = m.get(key)
            if rate is None or target <= 0 or rate >= 0.5 * target:
                continue
            self._last_slow_warning = now
            h, w = analyzer.frame_shape
            log.warning("faces are read %.2f times a second, under half of %s (%g): %.1f faces tracked on %d "
                        "worker%s, frames %dx%d, detection %.1f ms at the median; give the service more cores "
                        "([device] threads), a smaller frame or a larger [faces] min_face_px, or lower %s",
                        rate, name, target, m.get("faces_tracked", 0.0), analyzer.pool.size,
                        "" if analyzer.pool.size == 1 else "s", w, h, m["stage_ms"]["detect"]["p50"], name)
            return

    def _warn_if_behind(self, m: dict[str, Any]) -> None:
        """Say so when analysis cannot keep up with the camera (over a fifth of the frames dropped since
        the last metrics), with the slowest stage: at most every ten minutes."""
        frames_in, dropped = m["frames_in"], m["frames_dropped"]
        d_in, d_drop = frames_in - self._counts_at_metrics[0], dropped - self._counts_at_metrics[1]
        self._counts_at_metrics = (frames_in, dropped)
        now = time.monotonic()
        if d_in >= 10 and d_drop > 0.2 * d_in and now - self._last_behind_warning >= BEHIND_WARN_INTERVAL_S:
            self._last_behind_warning = now
            slowest = max(((k, v) for k, v in m["stage_ms"].items() if k != "frame"), key=lambda kv: kv[1]["p50"])
            log.warning("analysis cannot keep up: %d of %d frames dropped since the last metrics (slowest stage "
                        "%s, %.1f ms at the median); lower [faces] detect_hz, raise min_face_px or use a "
                        "lighter detector", d_drop, d_in, slowest[0], slowest[1]["p50"])

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(signum, _frame):
            log.info("received %s; stopping", signal.Signals(signum).name)
            self.halt.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGHUP, handler)  # a closed terminal or `kill -HUP`: stop as for SIGTERM
