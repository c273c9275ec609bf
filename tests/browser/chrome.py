"""Headless Chromium from Debian's packages (``chromium``, ``chromium-driver``) under Selenium:
no browser or driver is downloaded (the driver's path is given, so Selenium Manager is not run).

``CHROMIUM`` and ``CHROMEDRIVER`` override the executables' paths.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

#: flags for a closed network: without the background-networking ones Chromium's own connections
#: are refused and slow it down; ``--no-sandbox`` because CI runs as root
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,900")


def executables() -> tuple[str | None, str | None]:
    """``(chromium, chromedriver)`` paths, None for one that is not installed."""
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    return chromium, driver


@contextmanager
def headless_chromium(*, chromium: str, driver: str) -> Iterator:
    """A Selenium Chrome driver on a fresh profile, quit (and the profile removed) at exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={Path(profile)}")
        service = Service(executable_path=driver)
        browser = webdriver.Chrome(options=options, service=service)
        try:
            yield browser
        finally:
            browser.quit()
