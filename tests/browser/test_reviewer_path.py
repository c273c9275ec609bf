"""The reviewer's path in a real browser (headless Chromium) against a real Label Studio 1.23.2
and the backend under gunicorn, click for click as the README's "How reviewers work" says:

log in, open the project (its "Most suspicious first" tab: Prediction score shown, highest
first), check the first rows are the tasks the backend scored highest, open the top one, read
the model's guess and the reason on its prediction tab, correct its label (its true class's
digit key, Update), confirm another one ("label is right", key r, Update), then see through the
backend's /status one fault and one clean verdict, and after a refresh the new order.

Screenshots go to ``$SCREENSHOT_DIR`` (``make screenshots``: docs/img), else a temporary folder.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from backend.ls_client import LabelStudioClient
from scripts import import_folder
from scripts.ls_project import REVIEW_VIEW_TITLE
from tests.live_stack import PASSWORD, TOKEN, USER, backend_status, wait_all_scored

pytestmark = pytest.mark.e2e

TITLE = "browser noisy mnist"
TOP = 8  # rows compared with the backend's ranking
WAIT = 30.0  # seconds for the page to show what was asked for


# -- what Label Studio and the backend hold ----------------------------------------------------------
def scores(ls: LabelStudioClient, pid: int, version: str) -> dict[int, float]:
    """Each task's published score under ``version`` (what Label Studio sorts by)."""
    out = {}
    for t in ls.iter_tasks(pid, fields="all", page_size=500):
        got = [p["score"] for p in t.get("predictions") or [] if p.get("model_version") == version]
        if got:
            out[int(t["id"])] = float(got[0])
    return out


def assert_highest_first(rows: list[int], by_task: dict[int, float]) -> None:
    """``rows`` are the tasks with the highest scores, highest first (ties in any order)."""
    shown = [by_task[t] for t in rows]
    rest = [s for t, s in by_task.items() if t not in set(rows)]
    assert shown == sorted(shown, reverse=True), shown
    assert min(shown) >= max(rest), (shown, max(rest))


def annotation(ls: LabelStudioClient, task_id: int) -> dict:
    anns = ls.get(f"/api/tasks/{task_id}")["annotations"]
    assert len(anns) == 1, anns
    return anns[0]


def label_of(ann: dict) -> str:
    return next(r["value"]["choices"][0] for r in ann["result"] if r["from_name"] == "label")


def wait_for(check, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.5)


# -- the page ----------------------------------------------------------------------------------------
def page(browser):
    """A wait on the page that polls again when an element it read was re-rendered meanwhile
    (Label Studio's React views replace nodes while they load)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(browser, WAIT, ignored_exceptions=(StaleElementReferenceException,))


def css(browser, selector: str):
    from selenium.webdriver.common.by import By
    return browser.find_elements(By.CSS_SELECTOR, selector)


def grid_rows(browser) -> list[int]:
    """Task ids of the Data Manager rows on the page, top to bottom."""
    boxes = css(browser, "[data-testid=table-row] input[aria-label^='Select Task ']")
    return [int(b.get_attribute("aria-label").rsplit(" ", 1)[1]) for b in boxes]


def wait_grid(browser) -> list[int]:
    return page(browser).until(lambda b: grid_rows(b) or False)


def press(browser, key: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    ActionChains(browser).send_keys(key).perform()


def update_button(browser):
    return page(browser).until(lambda b: (css(b, "[data-testid=bottombar-update-button]") or [None])[0])


def open_row(browser, task_id: int) -> None:
    """Click the task's row in the Data Manager or the task list beside an open task (on its
    first cell); wait for that task's labeling view."""
    row = next(r for r in css(browser, "[data-testid=table-row]")
               if css_in(r, f"input[aria-label='Select Task {task_id}']"))
    css_in(row, ".lsf-table__cell:not(.lsf-select-row)")[0].click()
    update_button(browser)
    page(browser).until(lambda b: f"task={task_id}" in b.current_url)


def css_in(element, selector: str):
    from selenium.webdriver.common.by import By
    return element.find_elements(By.CSS_SELECTOR, selector)


def annotation_tabs(browser) -> dict[str, object]:
    """The labeling view's tabs above the image: ``prediction`` (the model's) and ``annotation``
    (the reviewer's), found by their avatar."""
    tabs = {}
    for tab in css(browser, ".lsf-annotation-button"):
        kind = "prediction" if css_in(tab, ".lsf-annotation-button__userpic_prediction") else "annotation"
        tabs.setdefault(kind, tab)
    return tabs


def project_link(browser):
    """The project's name in the breadcrumbs at the top: back to its Data Manager."""
    from selenium.webdriver.common.by import By
    return browser.find_element(
        By.XPATH, f"//a[span[contains(@class,'breadcrumbs__label') and text()='{TITLE}']]")


def shoot(browser, directory: Path, name: str) -> Path:
    path = directory / name
    assert browser.save_screenshot(str(path)), path
    return path


# -- the path ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def project(label_studio, backend, noisy_sample):
    """The sample imported with scripts/import_folder.py (which also presses Start Training),
    every task scored."""
    ls_server, _ = label_studio
    folder, truth = noisy_sample
    summary = import_folder.run_import(folder, url=ls_server.url, api_key=TOKEN, title=TITLE,
                                       ml_backend=backend.url, storage="upload", show_progress=False)
    ls = LabelStudioClient(ls_server.url, TOKEN)
    version = wait_all_scored(ls, summary.project_id, len(truth), backend=backend)
    by_path = {t["id"]: truth[t["data"]["path"]]
               for t in ls.iter_tasks(summary.project_id, fields=None, include="id,data")}
    return {"ls": ls, "url": ls_server.url, "id": summary.project_id, "version": version,
            "truth": by_path}


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    wanted = os.environ.get("SCREENSHOT_DIR")
    directory = Path(wanted) if wanted else tmp_path_factory.mktemp("screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def page_on_failure(browser, shots, request):
    """The page (screenshot and HTML) next to the screenshots when the test fails."""
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        shoot(browser, shots, "failure.png")
        (shots / "failure.html").write_text(browser.page_source)


def test_reviewer_path(browser, project, backend, shots, page_on_failure):
    from selenium.webdriver.common.by import By

    ls, pid, truth = project["ls"], project["id"], project["truth"]
    # 1. log in
    browser.get(project["url"] + "/user/login/")
    page(browser).until(lambda b: css(b, "input[name=email]"))
    css(browser, "input[name=email]")[0].send_keys(USER)
    css(browser, "input[name=password]")[0].send_keys(PASSWORD)
    css(browser, "button[type=submit]")[0].click()
    page(browser).until(lambda b: "/user/login" not in b.current_url)

    # 2. open the project from the project list: it opens on the review tab, sorted
    browser.get(project["url"] + "/projects/")
    page(browser).until(lambda b: b.find_elements(By.XPATH, f"//*[text()='{TITLE}']"))[0].click()
    first = wait_grid(browser)
    assert f"/projects/{pid}/data" in browser.current_url
    active = [t.get_attribute("aria-label") for t in css(browser, "[role=tab][aria-selected=true]")]
    assert active == [REVIEW_VIEW_TITLE], active
    headers = [h.text for h in css(browser, ".lsf-th-content")]
    assert any("Prediction score" in h for h in headers), headers
    order = browser.find_element(By.XPATH, "//button[.//span[text()='Prediction score']]")
    assert order.find_elements(By.XPATH, "following-sibling::button[@aria-label='Sort ascending']"), \
        "the Order by control does not show a descending Prediction score order"
    v1 = project["version"]
    by_task = scores(ls, pid, v1)
    assert_highest_first(first[:TOP], by_task)
    shoot(browser, shots, "review-sorted-data-manager.png")

    # 3. open the top task; its prediction tab shows the model's guess and why it is suspect
    top = first[0]
    given = label_of(annotation(ls, top))
    assert truth[top]["is_fault"], f"the top task {top} is not a planted fault: {truth[top]}"
    guess = next(p for p in ls.get(f"/api/tasks/{top}")["predictions"] if p["model_version"] == v1)
    guessed = next(r["value"]["choices"][0] for r in guess["result"] if r["from_name"] == "label")
    open_row(browser, top)
    annotation_tabs(browser)["prediction"].click()
    reason = page(browser).until(
        lambda b: [e.text for e in b.find_elements(By.XPATH, "//*[starts-with(normalize-space(text()),'given ')]")]
        or False)
    assert reason[0].startswith(f"given {given}, model "), reason
    assert f"model says {guessed}" in reason[0] or f"model also says {guessed}" in reason[0], reason
    checked = [e.get_attribute("name") for e in css(browser, ".lsf-choice__checkbox input[type=radio]:checked")]
    assert checked == [guessed], checked  # the prediction's choice: the model's guess
    shoot(browser, shots, "review-suspect-task.png")

    # 4. correct it on the reviewer's own tab: the true class's digit key, then Update
    annotation_tabs(browser)["annotation"].click()
    before = annotation(ls, top)["updated_at"]
    assert not update_button(browser).is_enabled()  # nothing changed yet
    press(browser, truth[top]["true_label"])
    page(browser).until(lambda b: update_button(b).is_enabled())
    update_button(browser).click()
    saved = wait_for(lambda: (a := annotation(ls, top))["updated_at"] != before and a,
                     timeout=WAIT, what="the corrected annotation to be saved")
    assert label_of(saved) == truth[top]["true_label"]

    # 5. from the task list on the left, open the first other task whose label is right and
    # confirm it: r, then Update (leaving the page right after a save can make Label Studio
    # 1.23.2 show a "mergeCache" warning, so the list beside the task is used)
    page(browser).until(lambda b: b.find_elements(
        By.XPATH, "//*[contains(text(),'Annotation updated successfully')]"))
    shown = wait_grid(browser)
    clean = [t for t in shown if t != top and not truth[t]["is_fault"]]
    confirm = clean[0] if clean else next(t for t in shown if t != top)
    before = annotation(ls, confirm)
    open_row(browser, confirm)
    assert not update_button(browser).is_enabled()
    press(browser, "r")
    page(browser).until(lambda b: update_button(b).is_enabled())
    update_button(browser).click()
    saved = wait_for(lambda: (a := annotation(ls, confirm))["updated_at"] != before["updated_at"] and a,
                     timeout=WAIT, what="the confirmed annotation to be saved")
    assert label_of(saved) == label_of(before)

    # 6. the backend counted one fault and one clean verdict, and published a new order
    status = wait_for(lambda: (s := backend_status(backend, pid))["pending_verdicts"] == 0
                      and s["verdicts"] >= 2 and s["state"] == "idle" and s["model_version"] != v1
                      and s, timeout=120, what="the verdicts to be applied")
    assert (status["verdicts_fault"], status["verdicts_clean"], status["reviewed"]) == (1, 1, 2), status
    v2 = wait_all_scored(ls, pid, len(truth), other_than=v1, backend=backend)
    assert v2 == status["model_version"]
    project_link(browser).click()
    wait_grid(browser)
    browser.refresh()
    after = wait_grid(browser)
    new_scores = scores(ls, pid, v2)
    assert new_scores[top] == new_scores[confirm] == 0.0  # reviewed: sorted last
    assert top not in after and confirm not in after
    assert_highest_first(after[:TOP], new_scores)
