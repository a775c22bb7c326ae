"""The page at / as a person uses it: headless Chromium (Debian's chromium + chromium-driver, driven by
Selenium) opens it, uploads a digit and reads the predicted label from the page.

Skipped, with the reason, where Chromium, chromedriver or Selenium is missing; .ci/run installs them.
"""

import importlib.util
import shutil

import pytest

from tests.serve.conftest import digits
from tests.serve.test_app import expected

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
WAIT = 60

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER and importlib.util.find_spec("selenium")),
    reason="needs Chromium, chromedriver and selenium (apt-get install chromium chromium-driver; pip install selenium)",
)


def chromium(window: str = "1000,760"):
    """Headless Chromium through the system chromedriver (Selenium Manager never downloads anything)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={window}",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def classify_on_page(driver, url: str, image) -> str:
    """Open the page, choose ``image`` in its file input, and return the label the page shows."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    driver.find_element(By.ID, "file").send_keys(str(image))
    label = driver.find_element(By.ID, "label")
    WebDriverWait(driver, WAIT).until(lambda d: label.text not in ("", "…") or d.find_element(By.ID, "error").text)
    return label.text


def test_the_page_classifies_an_uploaded_digit(served, tmp_path, monkeypatch):
    from selenium.webdriver.common.by import By

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager: never reach for the network
    (path, _), *_ = digits(served.root, tmp_path, 1)
    (want, probability), *_ = expected(served.run_dir, [path])
    driver = chromium()
    try:
        shown = classify_on_page(driver, served.url + "/", path)
        assert driver.find_element(By.ID, "error").text == ""
        assert shown == want  # the model's answer, as `tlearn predict` gives it
        bars = driver.find_elements(By.CSS_SELECTOR, "#bars .bar")
        assert len(bars) == 5 and bars[0].find_element(By.CLASS_NAME, "name").text == want
        shown_probability = driver.find_element(By.ID, "probability").text.removeprefix("probability ").rstrip(" %")
        assert float(shown_probability) == pytest.approx(100 * probability, abs=0.051)
        assert driver.execute_script("return document.getElementById('preview').naturalWidth") == 28
        assert driver.find_element(By.ID, "meta").text.startswith(served.run_dir.name)
    finally:
        driver.quit()
