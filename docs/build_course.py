"""Build the course website: README, lessons with their outputs, CLI reference, results.

    make course                      # or: python docs/build_course.py
    python docs/build_course.py --lessons 01 04     # only these lessons (a quicker check)

Steps (all under ``build/``, which git ignores, or under ``--out DIR``):

1. ``build/course-src/`` is laid out afresh: the README as the home page, ``lessons/README.md``,
   ``docs/papers.md`` (the papers as implemented) and ``docs/design.md`` (the rules), the
   command-line reference generated from the argparse parsers (``docs/gen_cli.py``),
   and every ``results/**/report.md`` with its figures.
2. Every lesson (``lessons/NN_*.py``, jupytext percent format) is executed as a notebook in
   quick mode (``TINYPROJ_QUICK=1``) by nbclient in the ``python3`` kernel of this
   interpreter, from ``lessons/`` as Jupyter would run it, two at a time; the executed
   notebook, with its printed output and inline figures, goes to ``course-src/lessons/``.
3. MkDocs (``mkdocs.yml``, with mkdocs-jupyter for the notebooks; copied to
   ``build/mkdocs.yml`` with the navigation in course order) renders it all into
   ``build/course-site/``: open ``build/course-site/index.html`` in a browser (plain files,
   no server needed), or serve it with ``python -m http.server -d build/course-site``.

Exits 1 when a lesson fails as a notebook (the site is still built, with the error shown in
the failing cell), 2 when a tool is missing (``pip install -e ".[course]"``).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"          # default build root; --out picks another (tests use a temp one)
LESSONS = ROOT / "lessons"
CELL_TIMEOUT_S = 600
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def lessons(only=()) -> list:
    found = sorted(LESSONS.glob("[0-9][0-9]_*.py"))
    return [p for p in found if not only or any(p.name.startswith(o) for o in only)]


def _rewrite_links(text: str, prefix: str = "") -> str:
    """Links to lesson scripts point at their pages (the executed notebooks)."""
    text = re.sub(r"\((?:\./)?lessons/(\d\d_[A-Za-z0-9_]+)\.py\)",
                  lambda m: f"({prefix}lessons/{m.group(1)}.ipynb)", text)
    return re.sub(r"\((?:\./)?lessons/README\.md\)", f"({prefix}lessons/index.md)", text)


def stage_pages(src: Path) -> None:
    """Home page, lessons index, CLI reference and results pages into ``src``."""
    sys.path.insert(0, str(ROOT / "docs"))
    from gen_cli import write_cli_reference
    (src / "lessons").mkdir(parents=True, exist_ok=True)
    (src / "index.md").write_text(_rewrite_links((ROOT / "README.md").read_text("utf-8")),
                                  encoding="utf-8")
    readme = LESSONS / "README.md"
    if readme.is_file():
        text = re.sub(r"\((?:\./)?(\d\d_[A-Za-z0-9_]+)\.py\)", r"(\1.ipynb)",
                      readme.read_text("utf-8"))
        (src / "lessons" / "index.md").write_text(text, encoding="utf-8")
    write_cli_reference(src / "cli")
    for page in ("papers.md", "design.md"):      # the project's account of the papers; its rules
        if (ROOT / "docs" / page).is_file():
            shutil.copy2(ROOT / "docs" / page, src / page)
    reports = sorted((ROOT / "results").glob("**/report.md"))
    index = ["# Results", "", "Reports written by `tinyproj report` from run folders "
             "(Table 2 and the paper's figures), as committed under `results/`.", ""]
    for report in reports:
        rel = report.parent.relative_to(ROOT / "results")
        dest = src / "results" / rel
        dest.mkdir(parents=True, exist_ok=True)
        for f in report.parent.iterdir():
            if f.is_file() and f.suffix.lower() in (".md", ".png", ".csv", ".svg"):
                shutil.copy2(f, dest / f.name)
        title = next((line[2:].strip() for line in report.read_text("utf-8").splitlines()
                      if line.startswith("# ")), str(rel))
        index.append(f"- [{rel}]({rel.as_posix()}/report.md): {title}")
    if not reports:
        index.append("(no `results/**/report.md` yet: make one with `tinyproj report`)")
    (src / "results").mkdir(parents=True, exist_ok=True)
    (src / "results" / "index.md").write_text("\n".join(index) + "\n", encoding="utf-8")


def _title(md: Path, fallback: str) -> str:
    for line in md.read_text("utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return fallback


def write_config(src: Path, lesson_stems: list) -> Path:
    """``build/mkdocs.yml``: the repository's ``mkdocs.yml`` with its folders made relative to
    ``build/`` and a navigation in course order (home, lessons, the papers, design, command
    line, results)."""
    import yaml
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text("utf-8"))
    config["docs_dir"] = src.name                # both relative to the generated config's folder
    config["site_dir"] = "course-site"
    lesson_pages = []
    for stem in lesson_stems:
        source = LESSONS / f"{stem}.py"
        heading = next((line[4:].strip() for line in source.read_text("utf-8").splitlines()
                        if line.startswith("# # ")), stem)
        lesson_pages.append({heading: f"lessons/{stem}.ipynb"})
    cli = [{"Overview": "cli/index.md"}] + [
        {f"tinyproj {p.stem}": f"cli/{p.name}"} for p in sorted((src / "cli").glob("*.md"))
        if p.name != "index.md"]
    results = [{"Overview": "results/index.md"}] + [
        {_title(p, p.parent.name) + f" ({p.parent.relative_to(src / 'results').as_posix()})":
         p.relative_to(src).as_posix()} for p in sorted((src / "results").glob("**/report.md"))]
    lessons_nav = ([{"Overview": "lessons/index.md"}] if (src / "lessons" / "index.md").is_file()
                   else []) + lesson_pages
    docs = [{title: page} for title, page in (("The papers", "papers.md"),
                                               ("Design", "design.md")) if (src / page).is_file()]
    config["nav"] = [{"Home": "index.md"}, {"Lessons": lessons_nav}] + docs + [
                     {"Command line": cli}, {"Results": results}]
    path = src.parent / "mkdocs.yml"
    path.write_text("# generated by docs/build_course.py from the repository's mkdocs.yml\n"
                    + yaml.safe_dump(config, sort_keys=False, allow_unicode=True), "utf-8")
    return path


def execute_lesson(lesson: Path, dest: Path, out_dir: Path) -> dict:
    """Run one lesson as a notebook in quick mode; write the executed .ipynb to ``dest``."""
    import jupytext
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError
    nb = jupytext.read(lesson)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    env = dict(os.environ, TINYPROJ_QUICK="1", PYTHONBREAKPOINT="0",
               TINYPROJ_LESSONS_OUT=str(out_dir), TINYPROJ_ROOT=str(ROOT))
    env.pop("TINYPROJ_BREAK", None)
    env.pop("MPLBACKEND", None)                # the kernel's inline backend, as in Jupyter
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    client = NotebookClient(nb, kernel_name="python3", timeout=CELL_TIMEOUT_S,
                            allow_errors=True, resources={"metadata": {"path": str(LESSONS)}})
    start = time.perf_counter()
    error = None
    try:
        client.execute(env=env)
    except (CellExecutionError, CellTimeoutError) as err:     # a timeout: the rest unrun
        error = _ANSI.sub("", str(err))[:2000]
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    if errors and error is None:
        error = f"{errors[0].get('ename')}: {errors[0].get('evalue')}"
    nbformat.write(nb, dest)
    return dict(lesson=lesson.name, seconds=time.perf_counter() - start, error=error,
                images=sum("image/png" in o.get("data", {}) for o in outputs))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lessons", nargs="*", default=(), metavar="NN",
                        help="build only these lessons (by number), e.g. --lessons 01 04")
    parser.add_argument("--jobs", type=int, default=2, help="lessons executed at once (2)")
    parser.add_argument("--out", type=Path, default=BUILD, metavar="DIR",
                        help="build root: pages in DIR/course-src, the site in DIR/course-site "
                             "(default build/)")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out} is a file: give a folder (or leave --out out for build/)")
    out = args.out.resolve()
    src, site = out / "course-src", out / "course-site"
    try:
        import jupytext  # noqa: F401
        import mkdocs  # noqa: F401
        import mkdocs_jupyter  # noqa: F401
        import nbclient  # noqa: F401
    except ImportError as err:
        print(f"build_course: {err.name} is missing; install the course extra: "
              f"pip install -e \".[course]\"", file=sys.stderr)
        return 2
    start = time.perf_counter()
    shutil.rmtree(src, ignore_errors=True)      # course-src is this script's own staging folder
    src.mkdir(parents=True)
    stage_pages(src)
    out_dir = out / "course-lessons-out"
    out_dir.mkdir(parents=True, exist_ok=True)
    todo = lessons(args.lessons)
    print(f"executing {len(todo)} lesson(s) as notebooks in quick mode, {args.jobs} at a time")
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        results = list(pool.map(lambda p: execute_lesson(
            p, src / "lessons" / f"{p.stem}.ipynb", out_dir), todo))
    for r in results:
        state = "FAILED: " + r["error"].splitlines()[-1] if r["error"] else "ok"
        print(f"  {r['lesson']:28s} {r['seconds']:6.1f} s  {r['images']:2d} inline figure(s)"
              f"  {state}")
    config = write_config(src, [p.stem for p in todo])
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--quiet", "--clean",
                           "-f", str(config)], cwd=ROOT,
                          env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))
    if proc.returncode != 0:
        print("build_course: mkdocs build failed", file=sys.stderr)
        return proc.returncode
    shown = site.relative_to(ROOT) if site.is_relative_to(ROOT) else site
    print(f"course website in {shown}/ ({time.perf_counter() - start:.0f} s): "
          f"open {shown}/index.html in a browser, or "
          f"python -m http.server -d {shown} and http://localhost:8000")
    failed = [r["lesson"] for r in results if r["error"]]
    if failed:
        print(f"build_course: {len(failed)} lesson(s) failed as notebooks: {', '.join(failed)}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
