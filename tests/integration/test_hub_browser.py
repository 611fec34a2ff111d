"""The hub's pages in a real headless browser (Debian's chromium and chromedriver, driven by
Selenium): the lecture page loads with every other host unreachable, the chart has the lecture's
bins, hovering shows values, a live lecture updates as events arrive, and the CSV export downloads.
A screenshot of the lecture page is kept in test-artifacts/ (the README's picture is made the same way).
"""

from __future__ import annotations

import csv
import json
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from emocast.cli import main
from emocast.contract.events import SCHEMAS, utc_timestamp
from tests.helpers.browser import ARTIFACTS, CHROMEDRIVER, CHROMIUM, lecture_video, wait, webdriver
from tests.helpers.hub_timeline import analyze_records
from tests.hub_support import HubProcess
from tests.support import Broker, free_port

pytest.importorskip("fastapi", reason="the hub's extra is not installed: pip install 'emocast[hub]'")


pytestmark = [pytest.mark.mqtt, pytest.mark.e2e, pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="Debian's chromium and chromium-driver are not installed (apt-get install -y chromium chromium-driver)")]


@pytest.fixture
def browser(tmp_path):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1100",
                # every host but this machine unreachable: the page must need nothing from the internet
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        opts.add_argument(arg)
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                           "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


@contextmanager
def running_hub(tmp_path: Path, db: str, conf: Path | None = None) -> Iterator[HubProcess]:
    """A broker and a hub process on ``db`` for one test (``conf``: its hub.toml, default
    ``small_rooms``), both stopped after it."""
    broker = Broker(tmp_path, free_port())
    broker.start()
    hub = HubProcess(tmp_path, broker.url, db, extra=["--config", str(conf or small_rooms(tmp_path))])
    try:
        hub.start()
        yield hub
    finally:
        hub.stop()
        broker.stop()


def small_rooms(tmp_path: Path) -> Path:
    """A hub config that shows rooms of one or two faces ([privacy] min_faces = 1; the default 3
    withholds them, tested in test_privacy_hub.py): these tests look at the chart itself."""
    conf = tmp_path / "hub.toml"
    conf.write_text("[privacy]\nmin_faces = 1\n")
    return conf


def test_lecture_page_offline_chart_hover_live_updates_and_export(tmp_path, browser):
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed (apt-get install -y mosquitto)")
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    broker = Broker(tmp_path, free_port())
    broker.start()
    db = str(tmp_path / "hub.sqlite")
    start = time.time() - 3600
    # a recorded lecture: two students' analyze logs, 10 minutes, the second one looks away from minute 4
    a = analyze_records(tmp_path / "ana.jsonl", {1: [(t, "attentive", "happy" if t < 300 else "neutral")
                                                     for t in range(0, 600)]})
    b = analyze_records(tmp_path / "ben.jsonl", {1: [(t, "attentive" if t < 240 else "looking_away", "neutral")
                                                     for t in range(0, 600)]})
    assert main(["hub", "import", str(a), str(b), "--title", "Photosynthesis (recorded)", "--start", str(start),
                 "--db", db]) == 0
    hub = HubProcess(tmp_path, broker.url, db, extra=["--config", str(small_rooms(tmp_path))])
    hub.start()
    try:
        (recorded,) = hub.get("/api/lectures")
        base = f"http://127.0.0.1:{hub.port}"
        browser.get(f"{base}/lectures/{recorded['id']}?bin_s=60")
        wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#attention-chart g.bin"), what="the chart")
        assert "Photosynthesis (recorded)" in browser.find_element(By.ID, "lecture-title").text
        timeline = hub.get(f"/api/lectures/{recorded['id']}/timeline?bin_s=60")
        columns = browser.find_elements(By.CSS_SELECTOR, "#attention-chart g.bin")
        assert len(columns) == len(timeline["bins"]) == 10
        assert [float(c.get_attribute("data-t")) for c in columns] == [x["t"] for x in timeline["bins"]]
        # minute 5 (ben looking away): the column has a looking-away segment; minute 1 has none
        assert columns[5].find_elements(By.CSS_SELECTOR, "rect[data-key=looking_away]")
        assert not columns[1].find_elements(By.CSS_SELECTOR, "rect[data-key=looking_away]")
        ActionChains(browser).move_to_element(columns[5]).perform()
        tip = wait(lambda: [t for t in browser.find_elements(By.CSS_SELECTOR, "#attention-chart .tooltip")
                            if t.is_displayed()], what="the tooltip")[0]
        assert "5:00" in tip.text and "attentive: 50%" in tip.text and "looking away: 50%" in tip.text
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "hub_lecture_page.png"))
        # export: the CSV link downloads the bins
        browser.find_element(By.ID, "export-csv").click()
        path = wait(lambda: [p for p in browser.downloads.glob("*.csv")], what="the CSV download")[0]
        rows = list(csv.DictReader(path.open()))
        assert len(rows) == 10 and float(rows[5]["looking_away_share"]) == pytest.approx(0.5)

        # a live lecture: events published now appear without reloading the page, told by the hub
        # (Server-Sent Events), not polled for
        live = hub.post("/api/lectures", {"title": "Live lecture", "devices": ["live-1"]})
        browser.get(f"{base}/lectures/{live['id']}")
        wait(lambda: browser.find_elements(By.ID, "live"), what="the live page")
        wait(lambda: browser.find_element(By.ID, "view").get_attribute("data-stream") == "open", what="the stream")
        before = browser.find_element(By.ID, "view").get_attribute("data-updated")
        assert not browser.find_elements(By.CSS_SELECTOR, "#attention-chart rect[data-key=attentive]")
        publish_live_face(broker.port, "live-1")
        wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#attention-chart rect[data-key=attentive]"),
             timeout=30, what="live events on the chart")
        assert browser.find_element(By.ID, "view").get_attribute("data-updated") != before
        wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#emotion-chart rect[data-key=happy]"),
             what="the live emotion")
        hub.post(f"/api/lectures/{live['id']}/stop")  # ended elsewhere: the stream says so, the page follows
        wait(lambda: browser.find_element(By.ID, "view").get_attribute("data-stream") == "ended", what="the end")
        wait(lambda: not browser.find_elements(By.ID, "live"), what="the page showing the lecture ended")
        # the educator's page lists both lectures; the operator's page the kiosk, and the imported
        # students' logs as recordings, not as offline devices
        browser.get(base + "/")
        wait(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#lectures tr[data-lecture]")) == 2, what="lectures")
        assert not browser.find_elements(By.ID, "devices")
        browser.get(base + "/devices")
        wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#devices tr[data-device=live-1]"), what="devices")
        rows = browser.find_elements(By.CSS_SELECTOR, "#recordings tbody tr")
        assert {r.get_attribute("data-device") for r in rows} == {"ana", "ben"}
        assert not browser.find_elements(By.CSS_SELECTOR, "#devices tr[data-device=ana]")
    finally:
        hub.stop()
        broker.stop()


def publish_live_face(port: int, device: str, emotion: str = "happy") -> None:
    """What a kiosk publishes when one face arrives attentive and ``emotion``, stamped now."""
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"fake-{device}")
    client.connect("127.0.0.1", port)
    client.loop_start()
    now = time.time()
    common = {"ts": utc_timestamp(now), "device": device, "track": 1, "source_t": 1.0}
    for seq, (kind, body) in enumerate([
        ("attention", {"state": "attentive", "previous": None, "previous_duration_s": 0.0}),
        ("emotion", {"emotion": emotion, "previous": None, "confidence": 0.9, "probs": {emotion: 0.9, "sad": 0.1}}),
    ], 1):
        payload = {"schema": SCHEMAS[kind], "id": str(uuid.uuid4()), "seq": seq, **common, **body}
        client.publish(f"emocast/{device}/events/{kind}", json.dumps(payload), qos=1).wait_for_publish(5)
    client.publish(f"emocast/{device}/status", "online", qos=1, retain=True).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()


XSS = '<img src=x onerror="window.__xss=1">'


def test_what_kiosks_and_users_send_is_shown_as_text_never_run(tmp_path, browser):
    """A hostile publisher's emotion label and device id, and a lecture title, each carrying markup
    that would run script: the page shows them as text, in the tables, the heading and the chart's
    tooltip, and nothing runs (the strict CSP would refuse inline script too)."""
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed (apt-get install -y mosquitto)")
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    broker = Broker(tmp_path, free_port())
    broker.start()
    hub = HubProcess(tmp_path, broker.url, str(tmp_path / "hub.sqlite"), extra=["--config", str(small_rooms(tmp_path))])
    hub.start()
    device = 'k<b onmouseover="window.__xss=2">1'
    try:
        lecture = hub.post("/api/lectures", {"title": XSS, "devices": [device]})
        publish_live_face(broker.port, device, emotion=XSS)
        wait(lambda: [d for d in hub.get("/api/devices") if d["device"] == device and d["events"] == 2],
             what="the hostile kiosk's events")
        base = f"http://127.0.0.1:{hub.port}"
        browser.get(f"{base}/lectures/{lecture['id']}")
        wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#emotion-chart g.bin rect[data-key]"), what="the chart")
        assert browser.find_element(By.ID, "lecture-title").text.startswith(XSS)
        column = [g for g in browser.find_elements(By.CSS_SELECTOR, "#emotion-chart g.bin")
                  if g.find_elements(By.CSS_SELECTOR, "rect[data-key]")][-1]
        ActionChains(browser).move_to_element(column).perform()
        tip = wait(lambda: [t for t in browser.find_elements(By.CSS_SELECTOR, "#emotion-chart .tooltip")
                            if t.is_displayed()], what="the tooltip")[0]
        assert XSS in tip.text
        browser.get(base + "/")
        wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#lectures tbody tr[data-lecture]"), what="lectures")
        assert XSS in browser.find_element(By.ID, "lectures").text
        browser.get(base + "/devices")
        wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#devices tbody tr[data-device]"), what="devices")
        assert device in browser.find_element(By.ID, "devices").text
        for el in browser.find_elements(By.CSS_SELECTOR, "#devices td"):
            ActionChains(browser).move_to_element(el).perform()
        assert browser.execute_script("return window.__xss") is None
        assert not browser.find_elements(By.CSS_SELECTOR, "#view img, #view b[onmouseover]")
    finally:
        hub.stop()
        broker.stop()


def test_a_hub_without_emotion_shows_attention_only_and_says_so(tmp_path, browser):
    """[privacy] emotion = false: a kiosk's emotion never reaches the page; the footer states the
    hub's privacy settings."""
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed (apt-get install -y mosquitto)")
    from selenium.webdriver.common.by import By

    conf = tmp_path / "hub.toml"
    conf.write_text("[privacy]\nemotion = false\nmin_faces = 1\n")
    broker = Broker(tmp_path, free_port())
    broker.start()
    hub = HubProcess(tmp_path, broker.url, str(tmp_path / "hub.sqlite"), extra=["--config", str(conf)])
    hub.start()
    try:
        lecture = hub.post("/api/lectures", {"title": "Maths", "devices": ["calm-1"]})
        publish_live_face(broker.port, "calm-1")
        wait(lambda: [d for d in hub.get("/api/devices") if d["device"] == "calm-1" and d["policy_dropped"] == 1],
             what="the kiosk's events")
        browser.get(f"http://127.0.0.1:{hub.port}/lectures/{lecture['id']}")
        wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#attention-chart rect[data-key=attentive]"),
             what="the attention chart")
        assert not browser.find_elements(By.ID, "emotion-chart")
        assert "Emotion" not in browser.find_element(By.ID, "view").text
        footer = wait(lambda: browser.find_element(By.ID, "privacy").text, what="the privacy footer")
        assert "emotion off" in footer
    finally:
        hub.stop()
        broker.stop()


def test_the_lecture_video_opens_locally_and_charts_and_moments_seek_it(tmp_path, browser):
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed (apt-get install -y mosquitto)")
    from selenium.webdriver.common.by import By

    db = str(tmp_path / "hub.sqlite")
    a = analyze_records(tmp_path / "ana.jsonl", {1: [(t, "attentive", "happy") for t in range(0, 600)]})
    b = analyze_records(tmp_path / "ben.jsonl", {1: [(t, "attentive" if t < 240 else "looking_away", "neutral")
                                                     for t in range(0, 600)]})
    assert main(["hub", "import", str(a), str(b), "--title", "Recorded", "--start", str(time.time() - 3600),
                 "--db", db]) == 0
    with running_hub(tmp_path, db) as hub:
        (lecture,) = hub.get("/api/lectures")
        browser.get(f"http://127.0.0.1:{hub.port}/lectures/{lecture['id']}?bin_s=60")
        wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#attention-chart g.bin"), what="the chart")
        assert not browser.find_element(By.ID, "lecture-video").is_displayed()
        browser.find_element(By.ID, "video-file").send_keys(str(lecture_video(tmp_path / "lesson.webm", 600)))
        state = "const v = document.getElementById('lecture-video'); return [v.readyState, v.error && v.error.code]"
        try:
            wait(lambda: browser.execute_script(state)[0] >= 1, what="the video's metadata")
        except AssertionError:
            raise AssertionError(f"video state {browser.execute_script(state)}") from None
        now = "return document.getElementById('lecture-video').currentTime"
        column = browser.find_elements(By.CSS_SELECTOR, "#attention-chart g.bin")[3]
        assert float(column.get_attribute("data-t")) == 180.0
        browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", column)
        wait(lambda: abs(browser.execute_script(now) - 180.0) < 2.0, what="the video at 3:00")
        drop = browser.find_element(By.CSS_SELECTOR, "#moments button.seek")
        browser.execute_script("arguments[0].click()", drop)
        target = float(drop.get_attribute("data-t"))
        assert target == 240.0  # ben looked away from minute 4
        wait(lambda: abs(browser.execute_script(now) - target) < 2.0, what="the video at the moment")
        wait(lambda: browser.execute_script(
            "return document.querySelector('#attention-chart .playhead').getAttribute('visibility')") == "visible",
             what="the playhead")
        # the keyboard: the chart takes focus, arrows walk its bins, Enter plays from the one reached
        from selenium.webdriver.common.keys import Keys

        chart = browser.find_element(By.CSS_SELECTOR, "#attention-chart svg")
        browser.execute_script("arguments[0].focus()", chart)
        chart.send_keys(Keys.ARROW_RIGHT * 8 + Keys.ARROW_LEFT, Keys.ENTER)
        assert chart.get_attribute("data-focused") == "6"
        wait(lambda: abs(browser.execute_script(now) - 360.0) < 2.0, what="the video at 6:00, by keyboard")
        assert "6:00" in browser.find_element(By.CSS_SELECTOR, "#attention-chart .tooltip").text
        table = browser.find_element(By.ID, "bins-table").get_attribute("textContent")
        assert "6:00" in table and "50%" in table  # the same numbers as a table
        # printed: a one-page lecture report
        import base64

        pdf = base64.b64decode(browser.execute_cdp_cmd("Page.printToPDF", {"paperWidth": 8.27, "paperHeight": 11.69})
                               ["data"])
        assert pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages") == 1


def test_the_comparison_page_overlays_two_lectures(tmp_path, browser):
    """The same lesson in two classes: checked on the lectures page, compared on one axis of video time,
    one line each (named, coloured and dashed), a table of the same numbers, their moments side by side."""
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed (apt-get install -y mosquitto)")
    from selenium.webdriver.common.by import By

    db = str(tmp_path / "hub.sqlite")
    for title, away_from in (("Period 1", 240), ("Period 3", 420)):
        logs = [analyze_records(tmp_path / f"{title[-1]}{who}.jsonl", {int(title[-1]): [
            (t, "attentive" if t < away_from or who == "a" else "looking_away", "neutral") for t in range(600)]})
            for who in ("a", "b")]
        assert main(["hub", "import", *map(str, logs), "--title", title, "--start", str(time.time() - 7200),
                     "--db", db]) == 0
    with running_hub(tmp_path, db) as hub:
        browser.get(f"http://127.0.0.1:{hub.port}/")
        boxes = wait(lambda: browser.find_elements(By.CSS_SELECTOR, "input[name=compare]"), what="the checkboxes")
        for box in boxes:
            box.click()
        browser.find_element(By.ID, "compare").click()
        lines = wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#compare-chart path.series"), what="the lines")
        assert sorted(x.get_attribute("data-label") for x in lines) == ["Period 1", "Period 3"]
        assert len({x.get_attribute("stroke-dasharray") for x in lines}) == 2  # not told apart by colour alone
        drops = {s.get_attribute("data-lecture"): s.text for s in browser.find_elements(By.CSS_SELECTOR,
                                                                                        ".compare-moments section")}
        assert len(drops) == 2 and any("4:00" in t for t in drops.values()) and any("7:00" in t for t in drops.values())
        table = browser.find_element(By.ID, "compare-table").get_attribute("textContent")
        assert "Period 1" in table and "50%" in table


def test_a_video_the_operator_placed_plays_beside_its_lecture(tmp_path, browser):
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed (apt-get install -y mosquitto)")
    from selenium.webdriver.common.by import By

    videos = tmp_path / "videos"
    videos.mkdir()
    lecture_video(videos / "biology-3.webm", 300)
    conf = tmp_path / "hub.toml"
    conf.write_text(f'[web]\nvideo_dir = "{videos}"\n[privacy]\nmin_faces = 1\n')
    db = str(tmp_path / "hub.sqlite")
    a = analyze_records(tmp_path / "ana.jsonl", {1: [(t, "attentive", "happy") for t in range(0, 300)]})
    assert main(["hub", "import", str(a), "--title", "Biology 3", "--start", str(time.time() - 3600), "--db", db,
                 "--video", "biology-3.webm"]) == 0
    assert main(["hub", "import", str(a), "--title", "x", "--db", db, "--video", "../etc/passwd"]) == 2
    with running_hub(tmp_path, db, conf) as hub:
        (lecture,) = hub.get("/api/lectures")
        assert lecture["video"] == "biology-3.webm"
        browser.get(f"http://127.0.0.1:{hub.port}/lectures/{lecture['id']}?bin_s=60")
        wait(lambda: browser.execute_script(
            "const v = document.getElementById('lecture-video'); return !!v && !v.hidden && v.readyState >= 1"),
             what="the operator's video")
        assert browser.find_element(By.ID, "video-source").text == "Playing biology-3.webm (from the hub)."
        assert not browser.find_element(By.ID, "video-file").is_displayed() or \
            browser.find_element(By.ID, "video-file").size["width"] <= 1  # no "No file chosen" beside it
        column = browser.find_elements(By.CSS_SELECTOR, "#attention-chart g.bin")[2]
        browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", column)
        wait(lambda: abs(browser.execute_script("return document.getElementById('lecture-video').currentTime")
                         - 120.0) < 2.0, what="the video at 2:00")
