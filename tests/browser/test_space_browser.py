"""The Space in a real browser: load the page, run the demo, change k, download the subset, upload bad files.

Screenshots of every step are saved under the test's tmp folder (``pytest --basetemp=DIR`` to keep them).
"""

from __future__ import annotations

import json
import re
import zipfile

import datasets
import pytest

pytestmark = pytest.mark.slow

RUN_TIMEOUT_MS = 240_000  # the curation of 1,000 demo rows takes seconds alone, longer on busy shared cores
SHOWN = ["instruction", "output", "generator", "dataset", "rating", "curated_rating", "curation_confidence",
         "misrated", "long_tail_score"]  # the columns of the selected-rows table
COLUMNS = {*SHOWN, "duplicate_group", "curation_posterior"}  # in the downloads (with the other demo columns)


def _open(page, url: str) -> None:
    """Load the app and wait for its controls."""
    page.goto(url)
    page.get_by_role("button", name="Run DS2").wait_for()


def _upload(page, path) -> None:
    """Choose ``path`` in the upload area, as a visitor does, and wait until the server has it."""
    with page.expect_file_chooser() as chooser:
        page.get_by_text("Click to Upload").click()
    with page.expect_response(lambda r: "/upload" in r.url and r.request.method == "POST") as response:
        chooser.value.set_files(str(path))
    assert response.value.ok, f"the upload of {path.name} failed: HTTP {response.value.status}"
    shown = re.compile(rf"{re.escape(path.stem)}\s*{re.escape(path.suffix)}")  # name and suffix: two elements
    page.locator("#upload", has_text=shown).wait_for()


def _set_k(page, k: int) -> None:
    box = page.locator("#subset-k input")
    box.fill(str(k))
    box.press("Enter")


def _download(page, button: str, folder):
    with page.expect_download() as download:
        page.locator(f"#{button}").click()
    path = folder / download.value.suggested_filename
    download.value.save_as(path)
    return path


def test_run_the_demo_change_k_and_download(browser_page, space_url, tmp_path):
    page, summary = browser_page, browser_page.locator("#summary")
    _open(page, space_url)
    downloads = [page.locator(f"#{button}") for button in ("download-parquet", "download-jsonl", "download-zip")]
    assert all(button.is_disabled() for button in downloads)  # nothing to download before a run
    page.get_by_label("number input for Demo rows to use").fill("1000")
    _set_k(page, 30)  # before any run: nothing to select from yet, and the page says so
    page.locator("#summary", has_text="Press Run DS2 to curate a pool").wait_for()
    page.get_by_role("button", name="Run DS2").click()
    page.get_by_text("curated 1 time(s), selected 1 time(s)").wait_for(timeout=RUN_TIMEOUT_MS)
    assert "Selected: 30 of the requested 30 rows" in summary.inner_text()
    assert all(button.is_enabled() for button in downloads)
    page.screenshot(path=tmp_path / "1-run.png", full_page=True)

    # the figures carry their titles, with no label badge drawn over them
    badges = page.locator("[data-testid=block-label]", has_text=re.compile("Transition|Rating distr|composition"))
    assert badges.count() == 3 and not any(badge.is_visible() for badge in badges.all())
    # every column of the selected-rows table is on the page, numbers rounded
    right_edge = page.evaluate("document.documentElement.clientWidth")
    for column in SHOWN:
        box = page.locator(f'th[title="{column}"]').first.bounding_box()
        assert box is not None and 0 <= box["x"] and box["x"] + box["width"] <= right_edge, f"{column} is off-screen"
    text = page.locator("#selected-rows").inner_text()
    assert re.search(r"\b0\.\d{1,3}\b", text) and not re.search(r"\d\.\d{4,}", text), "numbers not rounded"

    _set_k(page, 45)  # selects again from the curated pool: the curation count stays 1
    page.get_by_text("curated 1 time(s), selected 2 time(s)").wait_for(timeout=RUN_TIMEOUT_MS)
    assert "Selected: 45 of the requested 45 rows" in summary.inner_text()
    page.screenshot(path=tmp_path / "2-k45.png", full_page=True)

    parquet = _download(page, "download-parquet", tmp_path)
    rows = datasets.Dataset.from_parquet(str(parquet))
    assert parquet.name == "ds2-subset.parquet" and rows.num_rows == 45
    assert COLUMNS <= set(rows.column_names) and "embedding" not in rows.column_names  # not published
    lines = _download(page, "download-jsonl", tmp_path).read_text().splitlines()
    assert len(lines) == 45 and list(json.loads(lines[0])) == rows.column_names
    with zipfile.ZipFile(_download(page, "download-zip", tmp_path)) as zf:
        names = zf.namelist()
        card = zf.read("ds2-subset/README.md").decode()
    assert "ds2-subset/data/train-00000-of-00001.parquet" in names and "ds2-subset/ds2_manifest.json" in names
    assert "num_examples: 45" in card


@pytest.mark.parametrize(("name", "content", "message"), [
    ("empty.jsonl", "", "'empty.jsonl' is empty (0 bytes)"),
    ("qa.csv", "question,answer\nq,a\n", "the file has columns ['question', 'answer'], but no text columns"),
])
def test_bad_uploads_show_a_readable_message(browser_page, space_url, tmp_path, name, content, message):
    page = browser_page
    _open(page, space_url)
    (tmp_path / name).write_text(content)
    _upload(page, tmp_path / name)
    page.get_by_role("button", name="Run DS2").click()
    page.locator("#summary", has_text=message).wait_for(timeout=60_000)
    assert "Cannot run DS2 on this input" in page.locator("#summary").inner_text()
    assert not page.get_by_text("Error", exact=True).filter(visible=True).count()  # no bare error badges
    page.screenshot(path=tmp_path / f"error-{name}.png", full_page=True)
