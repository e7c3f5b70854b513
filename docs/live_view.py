"""Regenerate docs/live_view.png: edgefer-cam serving the bundled clip on loopback with the default
model, the page opened in headless Chromium once the bars move, and a screenshot taken.

    python docs/live_view.py            # needs Chromium, ChromeDriver (apt install chromium chromium-driver) and selenium
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "media" / "talking_face_640x360.mp4"


def main() -> int:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser = next(
        (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None
    )
    driver_path = shutil.which("chromedriver")
    if not (browser and driver_path):
        print("live_view.py: needs Chromium and ChromeDriver (apt install chromium chromium-driver)", file=sys.stderr)
        return 2
    command = [
        sys.executable,
        "-m",
        "edgefer.device.cam",
        "--source",
        str(CLIP),
        "--loop",
        "--realtime",
        "--headless",
        "--report-every",
        "0",
        "--serve",
        "127.0.0.1:0",
    ]
    cam = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = None
        for line in cam.stdout:
            found = re.search(r"http://127\.0\.0\.1:\d+/", line)
            if found:
                url = found.group(0)
                break
        if url is None:
            print("live_view.py: edgefer-cam did not start serving", file=sys.stderr)
            return 1
        options = webdriver.ChromeOptions()
        options.binary_location = browser
        for flag in (
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--window-size=1280,800",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
        ):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
        try:
            driver.get(url)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # a decoded frame and the bars of a tracked face
                ready = driver.execute_script(
                    "return document.getElementById('video').naturalWidth > 0"
                    " && document.querySelectorAll('.face .fill').length > 0"
                )
                if ready:
                    break
                time.sleep(0.5)
            time.sleep(4.0)  # a few seconds of timeline behind the bars
            out = REPO / "docs" / "live_view.png"
            driver.save_screenshot(str(out))
            print(f"wrote {out}")
        finally:
            driver.quit()
    finally:
        cam.terminate()
        cam.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
