"""Regenerate docs/phone_page.png: edgefer-phone serving the page on loopback with the default model,
the page opened in headless Chromium with the bundled clip as its camera, a screenshot once it has
read 40 frames.

    python docs/phone_page.py    # needs Chromium, ChromeDriver, selenium and npm ci --prefix web
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from edgefer.device.phone import PhoneServer, camera_file, chromium

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        camera = camera_file(REPO / "media" / "talking_face_640x360.mp4", Path(tmp) / "clip.y4m", 100)
        server = PhoneServer("fer2013-balanced", "127.0.0.1:0")
        driver = chromium(camera, width=700, height=560)
        try:
            driver.get(f"{server.url}?frames=40")
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not driver.execute_script("return !!window.edgefer?.done"):
                time.sleep(0.5)
            driver.save_screenshot(str(REPO / "docs" / "phone_page.png"))
        finally:
            driver.quit()
            server.close()
    print("wrote docs/phone_page.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
