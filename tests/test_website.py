"""The course website builds and its pages render in a real browser.

Builds the site with ``docs/build_course.py`` (README, CLI reference, results pages and a few
lessons executed as notebooks in quick mode; ``make course`` builds every lesson), then opens
each lesson page and the other main pages in headless Chromium. Checks: the build succeeds,
each lesson page holds its title and, for a lesson that draws figures (``_quick.show``),
inline PNG figures; a screenshot of every page is saved under ``build/site-screenshots/``
(git-ignored) as an artefact to look at.

Skipped where MkDocs, mkdocs-jupyter, nbclient or jupytext (``pip install -e ".[course]"``)
or Chromium (Debian: ``apt-get install chromium``) is missing. ``TINYPROJ_SITE_LESSONS``
(e.g. ``"01 04 05"``, the default; ``all`` for every lesson) picks the lessons built.
"""
from __future__ import annotations

import html
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "build" / "site-screenshots"
BUILD_TIMEOUT_S = 900

MISSING = [m for m in ("mkdocs", "mkdocs_jupyter", "nbclient", "jupytext", "ipykernel")
           if importlib.util.find_spec(m) is None]
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome",
                                           "google-chrome-stable") if shutil.which(n)), None)
pytestmark = [
    pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} missing: "
                       "pip install -e \".[course]\""),
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (apt-get install chromium)"),
]


def _chosen() -> list:
    wanted = os.environ.get("TINYPROJ_SITE_LESSONS", "01 04 05").split()
    every = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.py"))
    if wanted == ["all"]:
        return every
    return [p for p in every if p.name[:2] in wanted]


LESSONS = _chosen()


def title_of(lesson: Path) -> str:
    """The lesson's title: its first Markdown heading (``# # Lesson N — ...``)."""
    for line in lesson.read_text("utf-8").splitlines():
        m = re.match(r"^# # (.+)$", line)
        if m:
            return m.group(1).strip()
    raise AssertionError(f"{lesson.name} has no '# # title' line")


def plots(lesson: Path) -> bool:
    return "_quick.show(" in lesson.read_text("utf-8")


@pytest.fixture(scope="session")
def site(tmp_path_factory, worker_id) -> Path:
    """The course site, built once per test run: under pytest-xdist the workers share the run's
    temporary root, and a lock lets the first one build while the others wait and reuse it
    (the build takes ~40 s; each worker used to build its own). Not under build/, so that a
    run never rebuilds or reads a site left by another."""
    import fcntl
    root = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        root = root.parent                     # shared by this run's workers
    out = root / "course"
    with open(root / "course.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "course-site" / "index.html").is_file():
            proc = subprocess.run([sys.executable, str(ROOT / "docs" / "build_course.py"),
                                   "--out", str(out), "--lessons",
                                   *[p.name[:2] for p in LESSONS]],
                                  cwd=ROOT, capture_output=True,
                                  text=True, timeout=BUILD_TIMEOUT_S,
                                  env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))
            assert proc.returncode == 0, \
                f"build_course failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return out / "course-site"


def screenshot(page: Path, name: str) -> Path:
    """A full-width screenshot of ``page`` by headless Chromium; returns the PNG."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / f"{name}.png"
    shot.unlink(missing_ok=True)
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                    "--hide-scrollbars", f"--screenshot={shot}", "--window-size=1280,6000",
                    "--virtual-time-budget=5000", page.as_uri()],
                   capture_output=True, text=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 20_000, f"no screenshot of {page}"
    from matplotlib.image import imread
    image = imread(str(shot))
    assert image.shape[0] >= 5000 and float(image[..., :3].std()) > 0.05, f"{shot} is blank"
    return shot


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_page_renders_with_its_figures(site, lesson):
    page = site / "lessons" / f"{lesson.stem}.html"
    assert page.is_file(), f"no page for {lesson.name}"
    text = page.read_text("utf-8")
    assert html.escape(title_of(lesson), quote=False) in text or title_of(lesson) in \
        html.unescape(text), f"{page.name} lacks the title {title_of(lesson)!r}"
    assert "Traceback (most recent call last)" not in text and 'class="ansi-red' not in \
        text.replace('class="ansi-red-fg"', ""), f"{page.name} shows an error output"
    inline = len(re.findall(r"<img[^>]+src=\"data:image/png;base64,", text))
    if plots(lesson):
        assert inline > 0, f"{lesson.name} draws figures but its page has no inline PNG"
    screenshot(page, lesson.stem)


@pytest.mark.parametrize("page", ["index.html", "lessons/index.html", "cli/index.html",
                                  "cli/walk.html", "results/index.html", "papers.html",
                                  "design.html"])
def test_main_pages_render(site, page):
    path = site / page
    assert path.is_file(), f"{page} missing from the site"
    text = path.read_text("utf-8")
    if page == "papers.html":
        assert "StochM" in text and "Walking Noise" in text
    if page.startswith("cli/walk"):
        assert "--sigmas" in text and "walk-accuracy.png" in text
    if page == "results/index.html":
        reports = sorted((ROOT / "results").glob("**/report.md"))
        for report in reports:
            rel = report.parent.relative_to(ROOT / "results").as_posix()
            assert f"{rel}/report.html" in text
            assert (site / "results" / rel / "report.html").is_file()
    screenshot(path, page.replace("/", "_").removesuffix(".html"))
