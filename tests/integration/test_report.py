"""report.html in a real browser (Debian's chromium driven by Playwright, no browser download): it loads from the
file alone with no console error and no request, and its galleries hold the pairs evaluate.csv says they should."""

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tao_siamese_oi.entry_points.optical_inspection import run_action

pytestmark = pytest.mark.slow
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no chromium at {CHROMIUM}: apt-get install chromium (.ci/run does), or set CHROMIUM")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def test_the_report_opens_alone_and_shows_every_miss_and_the_worst_false_alarms(tiny_grid_model, browser, tmp_path):
    out = tmp_path / "evaluate"
    checkpoint = f"evaluate.checkpoint={tiny_grid_model['checkpoint']}"
    base = ["evaluate", "-e", str(tiny_grid_model["spec"]), checkpoint, f"evaluate.results_dir={out}"]
    assert run_action([*base, "evaluate.report=false"]) == 0  # the scores, to pick a threshold with errors both ways
    scores = pd.read_csv(out / "evaluate.csv")["siamese_score"]
    threshold = float(np.median(scores))
    assert (
        run_action(
            [*base, f"evaluate.threshold={threshold}", "evaluate.report_false_alarms=2", "evaluate.overwrite=true"]
        )
        == 0
    )
    frame = pd.read_csv(out / "evaluate.csv", keep_default_na=False)
    misses = frame[frame["outcome"] == "FN"]
    false_alarms = frame[frame["outcome"] == "FP"].sort_values("siamese_score", ascending=False)
    assert len(misses) >= 1 and len(false_alarms) >= 3  # the median threshold errs both ways on this model

    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors, requests = [], []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on(
        "request",
        lambda request: requests.append(request.url) if not request.url.startswith(("file:", "data:")) else None,
    )
    page.goto((out / "report.html").as_uri())
    assert errors == [] and requests == []
    missed = page.locator("#missed .pair")
    assert missed.count() == len(misses)
    assert sorted(int(missed.nth(i).get_attribute("data-row")) for i in range(missed.count())) == sorted(misses.index)
    shown = page.locator("#false-alarms .pair")
    assert [int(shown.nth(i).get_attribute("data-row")) for i in range(shown.count())] == list(false_alarms.index[:2])
    assert f"the 2 worst of {len(false_alarms)}" in page.locator("#false-alarms h2").inner_text()
    card = missed.nth(0)  # input | golden | difference | heatmap for each of the four lights
    assert card.locator("img").count() == 4 * 4
    assert all(card.locator("img").nth(i).evaluate("img => img.naturalWidth > 0") for i in range(16))
    assert "CSV line" in card.inner_text() and "score" in card.inner_text()
    screenshot = Path(os.environ.get("OI_REPORT_SCREENSHOT", tmp_path / "report.png"))
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
    page.close()
