"""The browser test's fixtures: the live stack of :mod:`tests.live_stack` (a real Label Studio
1.23.2 and the backend under gunicorn) with a small sample, and headless Chromium from Debian's
packages. A missing Label Studio, browser, driver or Selenium skips the test, and fails it under
CI=true."""
import os

import pytest

from tests.browser.chrome import executables, headless_chromium
from tests.live_stack import (PASSWORD, TOKEN, USER, backend, e2e_dir,  # noqa: F401
                              label_studio, noisy_sample, skip_or_fail)


@pytest.fixture(scope="session")
def backend_env() -> dict[str, str]:
    # the reviewer's two verdicts are applied together, or 3 s after the last one
    return {"VERDICT_BATCH": "2", "VERDICT_QUIET_SECONDS": "3", "LOG_LEVEL": "INFO"}


@pytest.fixture(scope="session")
def sample_size() -> int:
    return int(os.environ.get("BROWSER_IMAGES", "300"))


@pytest.fixture(scope="module")
def browser():
    chromium, driver = executables()
    if chromium is None or driver is None:
        skip_or_fail("headless Chromium needs Debian's chromium and chromium-driver "
                     f"(apt-get install chromium chromium-driver); found {chromium=}, {driver=}")
    try:
        import selenium  # noqa: F401
    except ImportError:
        skip_or_fail("selenium is not installed (pip install -r requirements-dev.txt)")
    with headless_chromium(chromium=chromium, driver=driver) as b:
        b.implicitly_wait(0)
        yield b


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """The call phase's report on the item (``rep_call``), for fixtures that act on failures."""
    report = yield
    if report.when == "call":
        item.rep_call = report
    return report
