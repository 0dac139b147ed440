"""The HTML report in a real browser: headless Chromium opens results/report.html.

The report is the one of the full-study run (session fixture ``full_study``
in tests/conftest.py: every stage, all 14 figures of Makefile FIGURES);
Chromium (driven by Selenium and chromedriver) opens it as a file and shows
every result the way a reader does (category, caption, then the figure or
table). Checks: every figure of the paper is there and decodes
(naturalWidth > 0), every table page renders rows, every caption renders
(no reStructuredText error) and carries this run's numbers where the figure
has any, and the console holds no error. Screenshots go to a pytest scratch
folder, and to ``$SEPHER_SCREENSHOTS`` when that is set (to look at them);
never into the run's ``results/``. ``SEPHER_REPORT=path/to/report.html``
checks an existing report (e.g. of ``make demo``) instead of the fixture's.

Skipped, with the reason, when /usr/bin/chromium or selenium is absent
(``.ci/browser/setup.sh`` installs Chromium and chromedriver).
"""

import html
import json
import os
import re
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from sepher.report.captions import CAPTION_TABLES

from .workflow import figure_ids

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

pytestmark = [
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="headless browser test needs /usr/bin/chromium and /usr/bin/chromedriver "
        "(Debian packages chromium, chromium-driver: run .ci/browser/setup.sh)",
    ),
    pytest.mark.slow,  # the full-study run (tests/conftest.py full_study)
]
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


#: The stages of the study, as the report's categories (issue 8).
STAGES = ("In vitro (dose-response)", "In vitro (imaging)", "Biopsies", "Cohort")


@pytest.fixture(scope="module")
def report(request):
    """results/report.html of the full-study run (or $SEPHER_REPORT, already built)."""
    if os.environ.get("SEPHER_REPORT"):
        return Path(os.environ["SEPHER_REPORT"]).resolve()
    return request.getfixturevalue("full_study").report


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    return tmp_path_factory.mktemp("screenshots")


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


def screenshot(driver, folder, name):
    path = folder / f"{name}.png"
    driver.save_screenshot(str(path))
    extra = os.environ.get("SEPHER_SCREENSHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(extra) / path.name)
    return path


@pytest.fixture(scope="module")
def opened(browser, report, shots):
    """The report open in the browser: its results (path -> entry), its categories
    and the text of its start page (the workflow description)."""
    browser.get(report.as_uri())
    wait_for(browser, "typeof app !== 'undefined' && app !== null")
    entries = browser.execute_script("return results;")
    categories = browser.execute_script("return Object.keys(categories);")
    overview = wait_for(
        browser, "document.body.innerText.includes('Workflow') && document.body.innerText"
    )
    screenshot(browser, shots, "00_overview")
    return entries, categories, overview


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


def test_report_is_grouped_by_stage(browser, opened, report):
    """The four stages and the Methods are categories; every figure of the paper
    and every table page is a result, and every stage shows figures."""
    entries, categories, _ = opened
    assert set(STAGES) | {"Methods"} <= set(categories), categories
    for figure_id in figure_ids():
        assert f"results/figures/{figure_id}.png" in entries, figure_id
    pages = sorted((report.parent / "report" / "tables").glob("*.html"))
    assert len(pages) >= len(STAGES)
    for page in pages:
        assert f"results/report/tables/{page.name}" in entries, page.name
    shown = {
        category_of(browser, path)[0]
        for path, entry in entries.items()
        if entry["mime_type"].startswith("image/")
    }
    assert set(STAGES) <= shown, f"stages without a figure: {set(STAGES) - shown}"


def test_every_figure_loads_with_its_numbers(browser, opened, shots):
    entries, *_ = opened
    images = {p: e for p, e in entries.items() if e["mime_type"].startswith("image/")}
    assert len(images) >= len(figure_ids())
    for path, entry in sorted(images.items()):
        figure_id = Path(path).stem
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
        # (for every figure whose numbers the report library computes)
        if CAPTION_TABLES.get(figure_id):
            assert "This run." in entry["caption"], path
            wait_for(browser, "document.body.innerText.includes('This run.')")
        screenshot(browser, shots, figure_id)


def test_every_caption_renders_without_rst_messages(opened):
    """No caption, nor the start page, shows a reStructuredText "System Message" box."""
    entries, _, overview = opened
    messages = {
        path: sorted(
            {
                " ".join(html.unescape(re.sub(r"<[^>]+>", " ", box)).split())
                for box in re.findall(r'class="system-message">(.*?)</div>', e["caption"], re.S)
            }
        )
        for path, e in entries.items()
        if "system-message" in e["caption"]
    }
    if "System Message" in overview:
        messages["start page"] = overview[overview.index("System Message") :][:200]
    assert not messages, json.dumps(messages, indent=1)


def caption_of(entries, figure_id):
    return next(e["caption"] for p, e in entries.items() if p.endswith(f"/{figure_id}.png"))


def test_km_caption_states_the_median_and_log_rank_p(opened, report):
    entries, *_ = opened
    caption = caption_of(entries, "fig6_km_os")
    medians = pd.read_csv(report.parent / "survival" / "km_medians.csv")
    os_no = medians[(medians["analysis"] == "os") & (medians["group"] == "no")].iloc[0]
    assert f"{os_no['median']:.1f} (95% CI {os_no['lower']:.1f}-{os_no['upper']:.1f})" in caption
    assert "Log-rank" in caption and "Pertuzumab-pretreated" in caption


def test_dose_response_caption_states_every_ic50_ratio(opened, report):
    entries, *_ = opened
    caption = caption_of(entries, "fig1_dose_response")
    comparisons = pd.read_csv(report.parent / "doseresponse" / "comparisons.csv")
    comparisons = comparisons[comparisons["family"] == "fig1"]  # fig 3's are in its caption
    assert len(comparisons) > 0
    for _, row in comparisons.iterrows():
        ratio = f"{row['ratio']:.2f} (95% CI {row['lower']:.2f}-{row['upper']:.2f})"
        text = f"{row['cell_line']} {row['numerator']} / {row['denominator']} {ratio}"
        assert html.escape(text, quote=False) in caption, text


def test_every_table_renders(browser, opened, shots):
    entries, *_ = opened
    pages = {p: e for p, e in entries.items() if e["mime_type"] == "text/html"}
    assert len(pages) >= len(STAGES) + 1  # a table of each stage and the Methods
    for path, entry in sorted(pages.items()):
        show(browser, path, entry, category_of(browser, path))
        wait_for(browser, "document.querySelector('#app iframe')")
        frame = browser.find_element("css selector", "#app iframe")
        browser.switch_to.frame(frame)
        try:
            if "methods" in path:
                text = wait_for(browser, "document.body && document.body.innerText")
                for stage in (
                    "dose-response",
                    "immunofluorescence",
                    "immunohistochemistry",
                    "Kaplan-Meier",
                ):
                    assert stage.lower() in text.lower(), stage
                assert "Software" in text
            else:
                rows = wait_for(browser, "document.querySelectorAll('tbody tr').length")
                assert rows > 0, path
        finally:
            browser.switch_to.default_content()
        screenshot(browser, shots, "table_" + Path(path).stem)


def test_no_console_errors(browser, opened):
    """Run last in this module: every view above was shown; the console stays clean."""
    severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not severe, json.dumps(severe, indent=1)
