from __future__ import annotations

import pytest

from emocast.device.perception.capture import (
    SourceError,
    open_source,
)


def test_a_gstreamer_pipeline_opens_only_with_an_opencv_that_has_gstreamer():
    """`gst:` sources (a Jetson's CSI camera through nvarguscamerasrc) need OpenCV with GStreamer.
    PyPI's wheels have none: the error names the cause and both ways out. Where the build has it
    (JetPack's OpenCV), a test pipeline gives real frames."""
    from emocast.device.perception.capture import GStreamerSource, opencv_has_gstreamer

    src = open_source("gst:videotestsrc num-buffers=30 ! video/x-raw,width=320,height=240 ! videoconvert ! "
                      "video/x-raw,format=BGR ! appsink")
    assert isinstance(src, GStreamerSource) and src.live
    if opencv_has_gstreamer():
        src.open()
        frame = src.read()
        src.close()
        assert frame is not None and frame.shape == (240, 320, 3)
    else:
        with pytest.raises(SourceError, match="built without GStreamer") as info:
            src.open()
        assert "python3-opencv" in str(info.value) and "v4l2loopback" in str(info.value)
    with pytest.raises(SourceError, match="must end in appsink"):
        open_source("gst:videotestsrc ! fakesink").open()


def test_the_service_exits_5_naming_gstreamer_for_a_pipeline_it_cannot_open(tmp_path):
    from emocast.cli import main
    from emocast.core.errors import ExitCode
    from emocast.device.perception.capture import opencv_has_gstreamer

    if opencv_has_gstreamer():
        pytest.skip("this OpenCV has GStreamer: the pipeline would open")
    code = main(["run", "--source", "gst:videotestsrc ! videoconvert ! appsink", "--duration", "2",
                 "--outbox", str(tmp_path / "o.sqlite"), "--broker", "mqtt://127.0.0.1:1"])
    assert code == ExitCode.SOURCE
