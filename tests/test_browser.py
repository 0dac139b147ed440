"""The HTML report in a real browser: headless Chromium opens results/report.html.

One module-scoped run of the cohort stage in a scratch directory, then
``snakemake --report``; Chromium (driven by Selenium and chromedriver) opens
the report as a file and shows every result the way a reader does (category,
caption, then the figure or table). Checks: every figure decodes
(naturalWidth > 0), every table page renders rows, every figure caption
carries this run's numbers, and the console holds no error. Screenshots go
to ``results/screenshots/`` of the scratch run, and to ``$SEPHER_SCREENSHOTS``
when that is set (to look at them). ``SEPHER_REPORT=path/to/report.html``
checks an existing report (e.g. of ``make demo``, every stage) instead.

Skipped, with the reason, when /usr/bin/chromium or selenium is absent
(``.ci/browser/setup.sh`` installs Chromium and chromedriver).
"""

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from .test_workflow_e2e import write_config
from .workflow import snakemake

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="headless browser test needs /usr/bin/chromium and /usr/bin/chromedriver "
    "(Debian packages chromium, chromium-driver: run .ci/browser/setup.sh)",
)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1600,1000",
)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """results/report.html of a cohort-only demo run (or $SEPHER_REPORT, already built)."""
    if os.environ.get("SEPHER_REPORT"):
        return Path(os.environ["SEPHER_REPORT"]).resolve()
    directory = tmp_path_factory.mktemp("report")
    write_config(directory)
    run = snakemake(directory, "--cores", "2")
    assert run.returncode == 0, run.stderr[-4000:]
    path = directory / "results" / "report.html"
    run = snakemake(directory, "--report", str(path))
    assert run.returncode == 0, run.stderr[-4000:]
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def wait_for(driver, script, *args, timeout=20.0):
    """Poll a JavaScript expression until it is truthy; return its value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = driver.execute_script(f"return {script};", *args)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {script}")


def screenshot(driver, report, name):
    folder = report.parent / "screenshots"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.png"
    driver.save_screenshot(str(path))
    extra = os.environ.get("SEPHER_SCREENSHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(extra) / path.name)
    return path


@pytest.fixture(scope="module")
def opened(browser, report):
    """The report open in the browser; its results (path -> entry) and categories."""
    browser.get(report.as_uri())
    wait_for(browser, "typeof app !== 'undefined' && app !== null")
    entries = browser.execute_script("return results;")
    categories = browser.execute_script("return Object.keys(categories);")
    screenshot(browser, report, "00_overview")
    return entries, categories


def show(browser, path, entry, category):
    """Open `category`, select the result (caption in the side panel), show its content."""
    kind = "img" if entry["mime_type"].startswith("image/") else "html"
    # one state change per call: React batches updates within one script
    browser.execute_script(
        "app.setView({navbarMode: 'subcategory', category: arguments[0], subcategory: arguments[1]});",
        *category,
    )
    browser.execute_script("app.showResultInfo(arguments[0]);", path)
    browser.execute_script(
        "app.setView({content: arguments[0], contentPath: arguments[1], resultPath: arguments[2]});",
        kind,
        entry["data_uri"],
        path,
    )
    return kind


def category_of(browser, path):
    return browser.execute_script(
        "for (const [cat, subcats] of Object.entries(categories)) {"
        "  for (const [sub, paths] of Object.entries(subcats)) {"
        "    if (paths.includes(arguments[0])) { return [cat, sub]; } } }"
        "return null;",
        path,
    )


def test_report_is_grouped_by_stage(opened):
    entries, categories = opened
    assert "Cohort" in categories and "Methods" in categories
    labels = [entry["labels"] or {} for entry in entries.values()]
    figures = {label.get("figure") for label in labels if "figure" in label}
    assert {"Fig. 5", "Fig. 6", "Fig. 7", "Fig. 8", "Table 1", "Table 2"} <= figures
    tables = {label.get("table") for label in labels if "table" in label}
    assert {"Kaplan-Meier medians", "Log-rank tests", "Cox models (Table 2)"} <= tables


def test_every_figure_loads_with_its_numbers(browser, report, opened):
    entries, _ = opened
    images = {p: e for p, e in entries.items() if e["mime_type"].startswith("image/")}
    assert len(images) >= 8
    for path, entry in sorted(images.items()):
        show(browser, path, entry, category_of(browser, path))
        size = wait_for(
            browser,
            "(() => { const img = [...document.querySelectorAll('#app img')]"
            ".find(i => i.getAttribute('src') === arguments[0]);"
            " return img && img.complete && img.naturalWidth > 0"
            " ? [img.naturalWidth, img.naturalHeight] : null; })()",
            entry["data_uri"],
        )
        assert size[0] > 500 and size[1] > 300, (path, size)
        # the caption of this run, with its numbers, is in the side panel
        assert "This run." in entry["caption"], path
        wait_for(browser, "document.body.innerText.includes('This run.')")
        screenshot(browser, report, Path(path).stem)


def test_km_caption_states_the_median_and_log_rank_p(opened, report):
    entries, _ = opened
    caption = next(e["caption"] for p, e in entries.items() if p.endswith("fig6_km_os.png"))
    import pandas as pd

    medians = pd.read_csv(report.parent / "survival" / "km_medians.csv")
    os_no = medians[(medians["analysis"] == "os") & (medians["group"] == "no")].iloc[0]
    assert f"{os_no['median']:.1f} (95% CI {os_no['lower']:.1f}-{os_no['upper']:.1f})" in caption
    assert "Log-rank" in caption and "Pertuzumab-pretreated" in caption


def test_every_table_renders(browser, report, opened):
    entries, _ = opened
    pages = {p: e for p, e in entries.items() if e["mime_type"] == "text/html"}
    assert len(pages) >= 6  # five cohort tables and the Methods
    for path, entry in sorted(pages.items()):
        show(browser, path, entry, category_of(browser, path))
        wait_for(browser, "document.querySelector('#app iframe')")
        frame = browser.find_element("css selector", "#app iframe")
        browser.switch_to.frame(frame)
        try:
            if "methods" in path:
                text = wait_for(browser, "document.body && document.body.innerText")
                assert "Kaplan-Meier" in text and "Software" in text
            else:
                rows = wait_for(browser, "document.querySelectorAll('tbody tr').length")
                assert rows > 0, path
        finally:
            browser.switch_to.default_content()
        screenshot(browser, report, "table_" + Path(path).stem)


def test_no_console_errors(browser, opened):
    """Run last in this module: every view above was shown; the console stays clean."""
    severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not severe, json.dumps(severe, indent=1)
