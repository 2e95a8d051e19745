"""Headless Debian chromium under Playwright, shared by the tests and the benchmark."""

import os
import shutil
import tempfile

from playwright.sync_api import sync_playwright

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

ARGS = [
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-default-browser-check",
    "--metrics-recording-only",
]


def chromium_args():
    args = list(ARGS)
    if os.geteuid() == 0:
        args.append("--no-sandbox")
    return args


class Browser:
    """A chromium with a fresh profile directory, removed on close."""

    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="dashboard-chromium-")
        self.playwright = sync_playwright().start()
        self.context = self.playwright.chromium.launch_persistent_context(
            self.profile,
            executable_path=CHROMIUM,
            headless=True,
            args=chromium_args(),
            viewport={"width": 1280, "height": 900},
        )

    def close(self):
        try:
            self.context.close()
        finally:
            self.playwright.stop()
            shutil.rmtree(self.profile, ignore_errors=True)
