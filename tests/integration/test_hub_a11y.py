"""The hub's pages on every screen, in headless Chromium: axe-core (run inside the page) finds no serious
or critical violation on the home and lecture pages, in light and dark mode; at a phone's 390 px
nothing scrolls sideways; dark mode changes the page; the colours come from the one palette that
``emocast analyze --plot`` uses too."""

from __future__ import annotations

import json

import pytest

from tests.helpers.browser import ARTIFACTS, CHROMEDRIVER, CHROMIUM, wait, webdriver  # noqa: F401
from tests.helpers.hub_timeline import T0
from tests.helpers.privacy_hub import room
from tests.hub_support import HubProcess
from tests.support import REPO, Broker, free_port

AXE = REPO / ".cache" / "node" / "node_modules" / "axe-core" / "axe.min.js"


pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not AXE.is_file(), reason="axe-core is not installed "
                                                   "(scripts/test.sh: npm install --prefix .cache/node axe-core@4)")]


@pytest.fixture
def phone(tmp_path):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("chromium is not installed")
    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})
    try:
        yield driver
    finally:
        driver.quit()


def axe_violations(driver) -> list[tuple[str, str, int, str]]:
    driver.execute_script(AXE.read_text())
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document).then(r => done(r.violations.map(v => [v.id, v.impact, v.nodes.length,"
        " v.nodes[0].html.slice(0, 160)])));")


def scheme(driver, value: str) -> None:
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme",
                                                                          "value": value}]})


def test_every_page_is_accessible_fits_a_phone_and_has_a_dark_mode(tmp_path, phone):
    """A live lecture of one kiosk and a recorded class with withheld bins, moments and a scrolling
    table (opened), at 390 and 1280 px, light and dark."""
    from emocast.cli import main
    from emocast.hub.store import Batch, Store
    from tests.hub_support import class_recordings

    db = str(tmp_path / "hub.sqlite")
    store = Store(db)
    batch = Batch.empty()
    batch.messages = room(4)
    batch.last_seen = {"k1": T0 + 600}
    store.write_batch(batch)
    lecture = store.create_lecture("Biology, period 3", ["k1"], T0, 0.0, T0 + 600)
    store.close()
    assert main(["hub", "import", *map(str, class_recordings(tmp_path / "class")), "--title", "Recorded class",
                 "--db", db]) == 0
    broker = Broker(tmp_path, free_port())
    broker.start()
    hub = HubProcess(tmp_path, broker.url, db)
    hub.start()
    base = f"http://127.0.0.1:{hub.port}"
    recorded = next(x for x in hub.get("/api/lectures") if x["recorded"])
    try:
        pages = (("/", "#lectures tr[data-lecture]"), ("/devices", "#devices tr[data-device]"),
                 (f"/lectures/{lecture['id']}", "#attention-chart g.bin"),
                 (f"/lectures/{recorded['id']}", "#attention-chart g.bin.withheld"),
                 (f"/compare?ids={lecture['id']},{recorded['id']}", "#compare-chart path.series"),
                 ("/lectures/nope", "#view h2"))
        for size in (390, 1280):
            phone.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                  {"width": size, "height": 844, "deviceScaleFactor": 2 if size < 500 else 1,
                                   "mobile": size < 500})
            for path, ready in pages:
                phone.get(base + path)
                wait(lambda ready=ready: phone.find_elements("css selector", ready), what=f"{path} drawn")
                for details in phone.find_elements("css selector", "details"):
                    phone.execute_script("arguments[0].open = true", details)  # what they hold is checked too
                backgrounds = {}
                for mode in ("light", "dark"):
                    scheme(phone, mode)  # applied before the call returns: the next script sees its styles
                    bad = [v for v in axe_violations(phone) if v[1] in ("serious", "critical")]
                    assert not bad, f"{path} ({mode}, {size} px): {json.dumps(bad, indent=1)}"
                    backgrounds[mode] = phone.execute_script("return getComputedStyle(document.body).backgroundColor")
                    width = phone.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
                    assert width[0] <= width[1], f"{path} ({mode}) scrolls sideways at {size} px: {width}"
                assert backgrounds["light"] != backgrounds["dark"]
        phone.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                              {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})
        scheme(phone, "light")
        phone.get(f"{base}/lectures/{lecture['id']}")
        attentive = wait(lambda: phone.find_elements("css selector", "#attention-chart rect[data-key=attentive]"),
                         what="the chart")[0]
        from emocast.contract.palette import state_colour

        assert attentive.get_attribute("fill").lower() == state_colour("attentive").lower()
        ARTIFACTS.mkdir(exist_ok=True)
        phone.save_screenshot(str(ARTIFACTS / "hub_lecture_phone.png"))  # the README's phone picture
    finally:
        hub.stop()
        broker.stop()
