"""The hub as a teacher meets it, in headless Chromium, on the default config ([privacy] min_faces 3):
a recorded class of eight students' recordings and a two-student tutorial, at 1280 and 390 px, light
and dark. Withheld bins are hatched, labelled and counted where they are; tooltips never show a share
for them; the partial last bin is drawn as long as it is; moments are in points with their rules, and
say why there are none; the video sits beside the charts (wide) or stays in view (narrow) while a
moment plays, and survives a change of bin length; the comparison marks lone points and gaps; tables
say when they scroll; errors are sentences. The README's pictures are taken here (written to docs/
with EMOCAST_UPDATE_SCREENSHOTS=1)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from emocast.cli import main
from tests.helpers.browser import ARTIFACTS, CHROMEDRIVER, CHROMIUM, lecture_video, wait, webdriver
from tests.helpers.hub_timeline import analyze_records
from tests.hub_support import HubProcess, class_recordings
from tests.support import REPO, Broker, free_port

pytestmark = [pytest.mark.mqtt, pytest.mark.e2e, pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists() and shutil.which("mosquitto")),
    reason="needs Debian's chromium, chromium-driver and mosquitto (scripts/test.sh installs them)")]


UPDATE_DOCS = os.environ.get("EMOCAST_UPDATE_SCREENSHOTS") == "1"


def luminance(rgb: tuple[int, int, int]) -> float:
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def rgb(css: str) -> tuple[int, int, int]:
    """``#rrggbb`` or ``rgb(r, g, b)`` as a tuple."""
    css = css.strip()
    if css.startswith("#"):
        return tuple(int(css[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
    return tuple(int(float(x)) for x in css[css.index("(") + 1:css.index(")")].split(",")[:3])  # type: ignore


def chromium(width: int, height: int, scheme: str = "light"):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 500})
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia",
                           {"features": [{"name": "prefers-color-scheme", "value": scheme}]})
    return driver


@pytest.fixture(scope="module")
def school(tmp_path_factory):
    """A hub on the default config with three recorded lectures: a class of eight (dated two days ago),
    a tutorial of two (undated: all withheld) and a short one whose only shown bin is its first."""
    tmp = tmp_path_factory.mktemp("school")
    db = str(tmp / "hub.sqlite")
    klass = class_recordings(tmp / "class", students=8, minutes=20)
    assert main(["hub", "import", *map(str, klass), "--title", "Biology, period 3",
                 "--start", str(time.time() - 2 * 86400), "--db", db]) == 0
    tutorial = class_recordings(tmp / "tutorial", students=2, minutes=10, seed=5)
    assert main(["hub", "import", *map(str, tutorial), "--title", "Tutorial", "--db", db]) == 0
    short = [analyze_records(tmp / f"s{i}.jsonl", {1: [(t, "attentive", None) for t in range(0, 30 if i else 300, 2)]})
             for i in range(3)]  # three faces for 30 s, then one stays to 5:00
    assert main(["hub", "import", *map(str, short), "--title", "Short", "--db", db]) == 0
    broker = Broker(tmp, free_port())
    broker.start()
    hub = HubProcess(tmp, broker.url, db)  # no --config: the defaults, min_faces 3
    hub.start()
    try:
        lectures = {x["title"]: x for x in hub.get("/api/lectures")}
        yield hub, lectures, tmp
    finally:
        hub.stop()
        broker.stop()


def in_view(driver, el) -> bool:
    top, bottom = driver.execute_script("const r = arguments[0].getBoundingClientRect(); return [r.top, r.bottom]", el)
    return top >= -1 and bottom <= driver.execute_script("return innerHeight") + 1


@pytest.mark.parametrize("width,scheme", [(1280, "light"), (390, "dark")])
def test_withheld_bins_are_hatched_labelled_counted_and_have_no_share(school, width, scheme):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    hub, lectures, _ = school
    lecture = lectures["Biology, period 3"]
    data = hub.get(f"/api/lectures/{lecture['id']}/timeline")
    held = [b for b in data["bins"] if b.get("withheld")]
    assert data["bin_s"] == 30 and len(data["bins"]) == 40 and len(held) >= 2  # the room emptied from 17:00
    driver = chromium(width, 900 if width > 500 else 844, scheme)
    try:
        driver.get(f"http://127.0.0.1:{hub.port}/lectures/{lecture['id']}")
        columns = wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#attention-chart g.bin"), what="the chart")
        hatched = driver.find_elements(By.CSS_SELECTOR, "#attention-chart g.bin.withheld")
        assert [float(g.get_attribute("data-t")) for g in hatched] == [b["t"] for b in held]
        assert all(g.find_elements(By.CSS_SELECTOR, "rect.hatch") for g in hatched)
        assert not any(g.find_elements(By.CSS_SELECTOR, "rect[data-key]") for g in hatched)
        labels = [t.text for t in driver.find_elements(By.CSS_SELECTOR, "#attention-chart .withheld-label")]
        assert labels and all(t in ("fewer than 3 faces", "withheld") for t in labels)
        note = driver.find_element(By.ID, "withheld-note").text
        assert note.startswith(f"{len(held)} of 40 bins withheld (hatched): fewer than 3 faces present")
        legend = driver.find_element(By.CSS_SELECTOR, ".legend .withheld-key").text
        assert legend == "withheld: fewer than 3 faces"
        # the tooltip of a withheld bin: no share at all; and it stays inside the chart at the right edge
        ActionChains(driver).move_to_element(hatched[-1]).perform()
        tip = wait(lambda: [t for t in driver.find_elements(By.CSS_SELECTOR, "#attention-chart .tooltip")
                            if t.is_displayed()], what="the tooltip")[0]
        assert "no shares: fewer than 3 faces present" in tip.text and "%" not in tip.text
        assert "from 2 recordings" in tip.text and "device" not in tip.text  # what a recorded lecture is made of
        chart_right = driver.execute_script(
            "return document.getElementById('attention-chart').getBoundingClientRect().right")
        assert driver.execute_script("return arguments[0].getBoundingClientRect().right", tip) <= chart_right + 1
        # the last bin lasts 20 s of 30: two thirds of a full column
        widths = [float(c.find_element(By.CSS_SELECTOR, "rect.hover").get_attribute("width")) for c in columns[-2:]]
        assert data["bins"][-1]["length_s"] == 20 and widths[1] == pytest.approx(widths[0] * 2 / 3, rel=0.02)
        # the header bar counts live events apart from imports; "How to read this" names only what is shown
        health = wait(lambda: driver.find_element(By.ID, "health").text, what="the health line")
        assert "live events received since the hub started (imports not counted)" in health
        explained = driver.execute_script("return document.querySelector('details.explain').textContent")
        assert "withheld (hatched)" in explained and "CSV" not in explained
        # the header: when it was recorded and for how long, from its recordings
        assert "recorded" in driver.find_element(By.ID, "lecture-when").text
        assert "20 min of video" in driver.find_element(By.ID, "lecture-when").text
        if width == 1280:
            ARTIFACTS.mkdir(exist_ok=True)
            driver.save_screenshot(str(ARTIFACTS / "hub-lecture.png"))
            if UPDATE_DOCS:
                driver.save_screenshot(str(REPO / "docs" / "hub-lecture.png"))
        # the tutorial of two: every bin withheld, the moments say why there are none
        driver.get(f"http://127.0.0.1:{hub.port}/lectures/{lectures['Tutorial']['id']}")
        wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#attention-chart g.bin.withheld"), what="the tutorial")
        assert "imported" in driver.find_element(By.ID, "lecture-when").text  # its recordings carry no date
        none = driver.find_element(By.CSS_SELECTOR, "[data-moments=drops] li.none").text
        assert none.startswith("none: fewer than two bins had 5 s of faces' time with shares shown")
    finally:
        driver.quit()


def test_moments_in_points_with_their_rules_and_the_video_beside_the_charts(school):
    from selenium.webdriver.common.by import By

    hub, lectures, tmp = school
    lecture = lectures["Biology, period 3"]
    driver = chromium(1280, 900)
    try:
        driver.get(f"http://127.0.0.1:{hub.port}/lectures/{lecture['id']}")
        wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#attention-chart g.bin"), what="the chart")
        drops = driver.find_element(By.CSS_SELECTOR, "[data-moments=drops]").text
        recoveries = driver.find_element(By.CSS_SELECTOR, "[data-moments=recoveries]").text
        assert "6:00: attentive share fell by" in drops and "points" in drops and "%" not in drops
        assert "8:00: attentive share rose by" in recoveries
        rules = driver.find_element(By.CSS_SELECTOR, "p.rules").text
        assert "15 points or more" in rules and "bins of 30 s" in rules and "15 s of faces' time" in rules
        # the video from this computer: beside the charts, both in view at 1280 x 900
        assert driver.find_element(By.ID, "video-source").text == "No video open."
        driver.find_element(By.ID, "video-file").send_keys(str(lecture_video(tmp / "period3.webm", 1190)))
        video = driver.find_element(By.ID, "lecture-video")
        wait(lambda: driver.execute_script("return arguments[0].readyState", video) >= 1, what="the video")
        assert "period3.webm" in driver.find_element(By.ID, "video-source").text
        chart = driver.find_element(By.ID, "attention-chart")
        assert in_view(driver, video) and in_view(driver, chart)
        assert video.rect["x"] > chart.rect["x"] + chart.rect["width"] - 1  # beside, not above
        # scrolled down to the moments, a click plays the video, which is still in view
        button = driver.find_element(By.CSS_SELECTOR, "[data-moments=drops] button.seek")
        driver.execute_script("arguments[0].scrollIntoView({block: 'end'})", button)
        button.click()
        wait(lambda: abs(driver.execute_script("return arguments[0].currentTime", video) - 360) < 2, what="6:00")
        assert in_view(driver, video)
        # another bin length: drawn in place, the page not reloaded, the video where it was
        driver.execute_script("window.stillHere = true")
        from selenium.webdriver.support.ui import Select

        Select(driver.find_element(By.ID, "bin")).select_by_visible_text("60")
        wait(lambda: driver.find_element(By.ID, "view").get_attribute("data-bins") == "20", what="bins of 60 s")
        assert driver.execute_script("return window.stillHere") is True
        assert driver.current_url.endswith("?bin_s=60")
        assert driver.find_element(By.ID, "lecture-video") == video
        assert abs(driver.execute_script("return arguments[0].currentTime", video) - 360) < 3
        assert "bin_s=60" in driver.find_element(By.ID, "export-csv").get_attribute("href")
        # the moments do not move with the bin length
        assert driver.find_element(By.CSS_SELECTOR, "[data-moments=drops]").text == drops
    finally:
        driver.quit()


def test_on_a_phone_the_player_stays_in_view_and_tables_say_they_scroll(school):
    from selenium.webdriver.common.by import By

    hub, lectures, tmp = school
    lecture = lectures["Biology, period 3"]
    driver = chromium(390, 844, "dark")
    try:
        driver.get(f"http://127.0.0.1:{hub.port}/lectures/{lecture['id']}")
        wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#attention-chart g.bin"), what="the chart")
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "hub-lecture-phone.png"))
        if UPDATE_DOCS:
            driver.save_screenshot(str(REPO / "docs" / "hub-lecture-phone.png"))
        # dark: each state 3:1 or more against the page, parted from its neighbours by the page's colour,
        # and told apart by its pattern as well as its colour
        background = rgb(driver.execute_script("return getComputedStyle(document.body).backgroundColor"))
        seen = {}
        for rect in driver.find_elements(By.CSS_SELECTOR, "#attention-chart rect.seg"):
            seen.setdefault(rect.get_attribute("data-key"), rect)
        assert set(seen) == {"attentive", "looking_away", "eyes_closed"}
        for key, rect in seen.items():
            assert contrast(rgb(rect.get_attribute("fill")), background) >= 3.0, key
            assert rgb(driver.execute_script("return getComputedStyle(arguments[0]).stroke", rect)) == background
        patterns = {r.get_attribute("data-pattern")
                    for r in driver.find_elements(By.CSS_SELECTOR, "#attention-chart rect.pat")}
        assert patterns == {"stripes", "dots"}
        # the bins table is wider than the phone: it says so
        driver.find_element(By.CSS_SELECTOR, "details.bin-table summary").click()
        wrap = driver.find_element(By.CSS_SELECTOR, "details.bin-table .table-wrap")
        wait(lambda: "scrolls" in wrap.get_attribute("class"), what="the scrolling table marked")
        hint = driver.find_element(By.CSS_SELECTOR, "details.bin-table .scroll-hint")
        assert hint.is_displayed() and "scroll the table sideways" in hint.text
        # a video, then a moment far down the page: the compact player stays at the top, in view
        driver.find_element(By.ID, "video-file").send_keys(str(lecture_video(tmp / "phone.webm", 1190)))
        video = driver.find_element(By.ID, "lecture-video")
        wait(lambda: driver.execute_script("return arguments[0].readyState", video) >= 1, what="the video")
        button = driver.find_element(By.CSS_SELECTOR, "[data-moments=recoveries] button.seek")
        driver.execute_script("arguments[0].scrollIntoView({block: 'end'})", button)
        assert driver.execute_script("return scrollY") > 800
        driver.execute_script("arguments[0].click()", button)
        wait(lambda: abs(driver.execute_script("return arguments[0].currentTime", video) - 480) < 2, what="8:00")
        assert in_view(driver, video)
        assert video.size["height"] <= 844 * 0.3
        assert driver.execute_script("return document.documentElement.scrollWidth") <= 390
    finally:
        driver.quit()


def test_the_comparison_marks_lone_points_and_gaps_and_its_lines_stand_out(school):
    from selenium.webdriver.common.by import By

    hub, lectures, _ = school
    ids = ",".join(lectures[t]["id"] for t in ("Biology, period 3", "Short", "Tutorial"))
    for scheme in ("light", "dark"):
        driver = chromium(1280, 900, scheme)
        try:
            driver.get(f"http://127.0.0.1:{hub.port}/compare?ids={ids}")
            wait(lambda d=driver: d.find_elements(By.CSS_SELECTOR, "#compare-chart path.series"), what="the lines")
            lines = {g.get_attribute("data-label"): g
                     for g in driver.find_elements(By.CSS_SELECTOR, "#compare-chart g.line")}
            assert lines["Short"].find_elements(By.CSS_SELECTOR, "circle.marker.lone")  # its one shown bin
            period3 = lines["Biology, period 3"].find_element(By.CSS_SELECTOR, "path.series")
            assert period3.get_attribute("data-pieces") == "1"
            assert len(lines["Biology, period 3"].find_elements(By.CSS_SELECTOR, "circle.marker")) == 2  # ends
            gaps = driver.find_element(By.ID, "compare-gaps").text
            assert "Tutorial: 20 withheld (fewer than 3 faces present) of 20 bins" in gaps
            background = rgb(driver.execute_script("return getComputedStyle(document.body).backgroundColor"))
            dashes = set()
            for path in driver.find_elements(By.CSS_SELECTOR, "#compare-chart path.series"):
                stroke = path.get_attribute("stroke")
                assert contrast(rgb(stroke), background) >= 3.0, (scheme, stroke)
                dashes.add(path.get_attribute("stroke-dasharray"))
            assert len(dashes) == 3
            legend = [s.get_attribute("stroke-dasharray") for s in
                      driver.find_elements(By.CSS_SELECTOR, ".legend svg.swatch line")]
            assert set(legend) == dashes  # the legend shows each line's dash
            # every axis label inside the chart
            svg_right = driver.execute_script(
                "return document.querySelector('#compare-chart svg').getBoundingClientRect().right")
            rights = driver.execute_script("return [...document.querySelectorAll('#compare-chart .axis text')]"
                                           ".map(t => t.getBoundingClientRect().right)")
            assert max(rights) <= svg_right + 0.5
        finally:
            driver.quit()


def test_the_lectures_and_devices_pages_and_errors_speak_plainly(school):
    from selenium.webdriver.common.by import By

    hub, lectures, _ = school
    base = f"http://127.0.0.1:{hub.port}"
    driver = chromium(390, 844)
    try:
        driver.get(base + "/")
        rows = wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#lectures tr[data-lecture]"), what="lectures")
        # newest first: Short and the tutorial imported now (undated: "imported"), the class of two days ago last
        texts = [r.text for r in rows]
        assert "Biology, period 3" in texts[-1] and "recorded" in texts[-1] and "20 min" in texts[-1]
        assert texts[0].startswith("Short imported") and "3 recordings" in texts[0]
        assert texts[1].startswith("Tutorial imported") and "10 min" in texts[1] and "2 recordings" in texts[1]
        assert driver.find_element(By.ID, "no-kiosks").is_displayed()  # no kiosk yet: no start form
        assert not driver.find_elements(By.ID, "new-lecture")
        driver.find_element(By.ID, "compare").click()
        assert "Check the lectures to compare first" in driver.find_element(By.ID, "compare-note").text
        assert driver.current_url == base + "/"
        driver.get(base + "/devices")
        wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#recordings tr[data-device]"), what="recordings")
        page = driver.find_element(By.ID, "view").text
        assert "/api/" not in page and "Refused messages" in page
        for path, heading in (("/lectures/nope", "Not found"), ("/no-such-page", "Not found"),
                              ("/compare?ids=nope", "Not found")):
            driver.get(base + path)
            wait(lambda heading=heading: driver.find_elements(By.CSS_SELECTOR, "#view h2") and
                 driver.find_element(By.CSS_SELECTOR, "#view h2").text == heading, what=f"{path}'s error")
            text = driver.find_element(By.ID, "view").text
            assert "{" not in text and "detail" not in text and "Back to the lectures" in text
        logs = [x for x in driver.get_log("browser") if "favicon" in x.get("message", "")]
        assert not logs
    finally:
        driver.quit()


def test_the_start_form_refuses_a_lecture_without_kiosks(school):
    """With a kiosk known, the start form needs one chosen: submitting with none starts nothing."""
    import json
    import uuid

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from selenium.webdriver.common.by import By

    hub, _, _ = school
    port = int(hub.broker_url.rsplit(":", 1)[1])
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"k-{uuid.uuid4().hex[:6]}")
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.publish("emocast/room-1/status", "online", qos=1, retain=True).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()
    wait(lambda: any(d["device"] == "room-1" for d in hub.get("/api/devices")), what="the kiosk")
    before = len(hub.get("/api/lectures"))
    driver = chromium(1280, 900)
    try:
        driver.get(f"http://127.0.0.1:{hub.port}/")
        form = wait(lambda: driver.find_elements(By.ID, "new-lecture"), what="the start form")[0]
        form.find_element(By.NAME, "title").send_keys("Chemistry")
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        time.sleep(0.5)
        assert driver.execute_script("return document.querySelector('#new-lecture select').validity.valueMissing")
        assert len(hub.get("/api/lectures")) == before and driver.current_url.endswith("/")
        assert json.dumps(hub.get("/api/lectures")).count("Chemistry") == 0
    finally:
        driver.quit()
