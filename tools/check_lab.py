"""Check that `make lab` renders the chapters' MyST: JupyterLab 4 + jupyterlab-myst in Chromium.

Starts ``jupyter lab`` on a free localhost port with a random token, the notebooks as its
root (autosave off, checkpoints in a temporary folder: nothing is written next to them),
opens each notebook at 1280 x 900 in headless Chromium with every request to another host
blocked, waits until every markdown cell is rendered, and compares each markdown cell's
rendering with what its source asks for:

* ``not-rendered``  a markdown cell that jupyterlab-myst did not render;
* ``exercise``      fewer or more exercise boxes than ``{exercise}`` directives in the source;
* ``solution``      a ``{solution}`` that is not a collapsed dropdown (``<details>`` without
  ``open``, body hidden), or that does not open when its title is clicked;
* ``raw-role``, ``raw-math``  MyST markup left raw in a rendered cell (the rules of
  tools/check_book.py, plus a ``$`` outside code);
* ``unknown``       a directive or role that jupyterlab-myst does not know (an error box);
* ``math``          a cell whose source has ``$`` math but shows no KaTeX;
* ``external``      a request to a host other than localhost;
* ``changed``       a checked notebook that changed on disk during the check.

Notes (printed; failures only with ``--strict``): what a reader sees that differs from the
book, mostly because a notebook is one page and the book is many:

* ``glue``      a ``{glue:text}`` (``{glue}``, ``{glue:md}``) role: jupyterlab-myst does not
  know glue and shows the key and format (``perm_change:.2f``) where the book shows the
  number, also after the notebook ran; the code cell above prints the number;
* ``doc-link``  a ``{doc}`` role without a title: the link shows the target's path;
* ``unresolved``  a citation or cross-reference to another page (``{cite:p}``, a
  ``{prf:ref}`` into another chapter): jupyterlab-myst shows the key with a warning sign
  ("Citation Not Found", "Cross Reference Not Found");
* ``console``   errors in the browser console (jupyterlab-myst reports ``{term}`` targets it
  cannot find: the glossary is a page of the book, not of the notebook).

Usage::

    tools/offline.sh .venv/bin/python tools/check_lab.py      # chapters 03, 07, assignment 2
    .venv/bin/python tools/check_lab.py 05_decision_level_fusion.ipynb --strict
    make check-lab                                             # installs the lab extra first

Exit status 1 when anything fails, 2 when JupyterLab or Chromium cannot start. Screenshots
go to ``_build/lab-screenshots/``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).parent))
from check_book import LOCAL_HOSTS, RAW_MATH, RAW_ROLE, Finding, find_chromium  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = (
    "03_feature_level_fusion.ipynb",  # exercises, solutions with code, glue
    "07_mathematics_of_fusion.ipynb",  # display math, prf directives
    "assignments/a02_cross_attention.ipynb",  # nbgrader cells
)
VIEWPORT = {"width": 1280, "height": 900}
NOTE_KINDS = {"glue", "doc-link", "unresolved", "console"}
# JupyterLab user settings for the check: render every cell (no windowing), never autosave,
# no news or update pop-up over the screenshots.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}
DIRECTIVE = re.compile(r"^ {0,3}(?:`{3,}|:{3,})\{(exercise|solution)\}", re.M)
# Code blocks (not directive fences such as ````{solution}) and inline code: no math there.
CODE = re.compile(r"^ {0,3}(`{3,}|~{3,})(?![`~{])[^\n]*\n.*?^ {0,3}\1(?!`)|`[^`\n]+`", re.M | re.S)
GLUE = re.compile(r"\{glue(?::text|:md)?\}`([^`:]+)(:[^`]*)?`")
DOC_NO_TITLE = re.compile(r"\{doc\}`([^`<]+)`")
DOLLAR = re.compile(r"\$")
UNKNOWN = re.compile(r"Unknown (?:Directive|Role)")  # jupyterlab-myst's error box title
RAW_CHECKS = (
    (RAW_ROLE, "raw-role"),
    (RAW_MATH, "raw-math"),
    (DOLLAR, "raw-math"),
    (UNKNOWN, "unknown"),
)
# The notebook in the tab on show (a page opens one, with ?reset: no restored tabs).
SHOWN = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook"
# Read every cell of the open notebook; what a reader sees is judged in Python (judge).
CELLS_JS = """(shown) => [...document.querySelectorAll(`${shown} .jp-Cell`)].map((cell) => {
  const myst = cell.querySelector(':scope .jp-Cell-inputArea .myst');
  if (!cell.classList.contains('jp-MarkdownCell')) return {markdown: false};
  if (!myst) return {markdown: true, rendered: false};
  const bare = myst.cloneNode(true);
  bare.querySelectorAll('.katex, code, pre').forEach((el) => el.remove());
  return {
    markdown: true,
    rendered: true,
    exercises: myst.querySelectorAll('aside.myst-exercise').length,
    solutions: [...myst.querySelectorAll('details.myst-exercise')].map((d) => ({
      title: d.querySelector('summary').textContent.trim(),
      open: d.open,
      bodyVisible: [...d.children].some((c) => c.tagName !== 'SUMMARY' && c.checkVisibility()),
    })),
    katex: myst.querySelectorAll('.katex').length,
    text: bare.textContent,
    links: [...myst.querySelectorAll('a')].map((a) => a.textContent.trim()),
    unresolved: [...myst.querySelectorAll('[title$="Not Found"]')].map(
      (el) => `${el.title}: ${el.textContent.trim()}`),
  };
})"""


@dataclass(frozen=True)
class Expect:
    """What the source of one markdown cell asks the renderer for (cell ``index``)."""

    index: int
    exercises: int
    solutions: int
    math: bool
    glue: tuple[str, ...]
    doc_targets: tuple[str, ...]


def expectations(notebook: Path) -> dict[int, Expect]:
    """Each markdown cell of ``notebook`` (by cell index) and the boxes, math and roles it has."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    found = {}
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        source = "".join(cell["source"])
        kinds = DIRECTIVE.findall(source)
        found[i] = Expect(
            index=i,
            exercises=kinds.count("exercise"),
            solutions=kinds.count("solution"),
            math=bool(DOLLAR.search(CODE.sub("", source))),
            glue=tuple(m.group(1) + (m.group(2) or "") for m in GLUE.finditer(source)),
            doc_targets=tuple(DOC_NO_TITLE.findall(source)),
        )
    return found


def judge(page: str, expects: dict[int, Expect], cells: list[dict]) -> list[Finding]:
    """Compare what CELLS_JS read from the open notebook with what its source asks for."""
    found: list[Finding] = []

    def add(kind: str, index: int, detail: str) -> None:
        found.append(Finding(page, "lab", kind, f"cell {index}: {detail}"))

    for index, want in sorted(expects.items()):
        seen = cells[index] if index < len(cells) else {"markdown": False}
        if not seen.get("rendered"):
            add("not-rendered", index, "markdown cell without a MyST rendering")
            continue
        text = seen["text"]
        if seen["exercises"] != want.exercises:
            add(
                "exercise",
                index,
                f"{seen['exercises']} exercise boxes, source has {want.exercises}",
            )
        solutions = [s for s in seen["solutions"] if s["title"].startswith("Solution")]
        if len(solutions) != want.solutions:
            add(
                "solution",
                index,
                f"{len(solutions)} dropdowns, source has {want.solutions}",
            )
        for sol in solutions:
            if sol["open"] or sol["bodyVisible"]:
                add("solution", index, f"{sol['title']!r} is shown open, not collapsed")
        for rx, kind in RAW_CHECKS:
            if m := rx.search(text):
                snippet = text[max(0, m.start() - 30) : m.end() + 30].replace("\n", " ")
                add(kind, index, f"{m.group(0)!r} in {snippet!r}")
        if want.math and not seen["katex"]:
            add("math", index, "source has $ math, the cell shows no KaTeX")
        for glue in want.glue:
            key = glue.split(":")[0]
            if m := re.search(rf"{re.escape(key)}(:[^\s,;)]*)?", text):
                add("glue", index, f"glue `{glue}` shows as {m.group(0)!r}, not its value")
            else:
                add("glue", index, f"glue `{glue}` shows nothing")
        for what in seen["unresolved"]:
            add("unresolved", index, f"shown with a warning sign, {what!r}")
        for target in want.doc_targets:
            if target in seen["links"]:
                add("doc-link", index, f"{{doc}}`{target}` shows the path {target!r}")
    return found


def _digest(paths: list[Path]) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_lab(notebook_dir: Path, state: Path, timeout: float = 120.0):
    """Start ``jupyter lab`` on ``notebook_dir``; returns (process, origin, token) once it answers.

    JupyterLab's settings, workspaces and runtime files go to ``state`` (a temporary folder).

    Raises:
        ValueError: the server exits or does not answer within ``timeout`` seconds.
    """
    for plugin, values in LAB_SETTINGS.items():
        path = state / "settings" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(
        os.environ,
        JUPYTERLAB_SETTINGS_DIR=str(state / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(state / "workspaces"),
        JUPYTER_RUNTIME_DIR=str(state / "runtime"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    jupyter = Path(sys.executable).with_name("jupyter")
    log = (state / "server.log").open("w")
    command = [str(jupyter), "lab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
               f"--port={port}", f"--IdentityProvider.token={token}",
               f"--notebook-dir={notebook_dir}",
               # JupyterLab checkpoints each notebook it opens: not next to the notebooks
               f"--FileCheckpoints.checkpoint_dir={state / 'checkpoints'}"]  # fmt: skip
    server = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    origin = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = (state / "server.log").read_text(errors="replace")[-1500:]
            raise ValueError(f"jupyter lab exited with status {server.returncode}:\n{tail}")
        try:
            urllib.request.urlopen(f"{origin}/api/status?token={token}", timeout=2)
            return server, origin, token
        except OSError:
            time.sleep(0.5)
    stop_lab(server)
    raise ValueError(f"jupyter lab did not answer on {origin} within {timeout:.0f} s")


def stop_lab(server: subprocess.Popen) -> None:
    """Stop the server and its kernels (its whole process group)."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    try:  # kernels the server started outlive it when it is killed
        os.killpg(server.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _shoot(page, selector: str | None, path: Path) -> None:
    if selector:
        page.evaluate(
            "(sel) => { const el = document.querySelector(sel);"
            " if (el) el.scrollIntoView({block: 'start'}); }",
            selector,
        )
        page.wait_for_timeout(200)
    page.screenshot(path=str(path))


def check_notebook(context, origin: str, token: str, notebook_dir: Path, rel: str,
                   shots: Path | None, timeout_ms: int) -> list[Finding]:  # fmt: skip
    """Open one notebook in JupyterLab, judge every markdown cell, click a solution open."""
    expects = expectations(notebook_dir / rel)
    events: list[str] = []
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and events.append(m.text.splitlines()[0]))
    page.on("pageerror", lambda e: events.append(f"uncaught {e}"))
    page.goto(f"{origin}/lab/tree/{rel}?reset&token={token}")
    markdown = len(expects)
    try:
        page.wait_for_function(
            "([shown, n]) => document.querySelectorAll("
            "`${shown} .jp-MarkdownCell .jp-Cell-inputArea .myst`).length >= n",
            arg=[SHOWN, markdown],
            timeout=timeout_ms,
            polling=500,
        )
    except Exception:  # noqa: BLE001 - playwright's TimeoutError; judge reports the cells
        pass
    page.wait_for_timeout(500)  # let the last cells finish their KaTeX
    findings = judge(rel, expects, page.evaluate(CELLS_JS, SHOWN))
    stem = Path(rel).stem
    first = page.locator(f"{SHOWN} details.myst-exercise > summary").first
    if shots:
        _shoot(page, None, shots / f"{stem}-top.png")
        if page.locator(f"{SHOWN} aside.myst-exercise").count():
            _shoot(page, f"{SHOWN} aside.myst-exercise", shots / f"{stem}-exercise.png")
        if page.locator(f"{SHOWN} .katex-display").count():
            _shoot(page, f"{SHOWN} .katex-display", shots / f"{stem}-math.png")
    if first.count():
        try:
            first.click(timeout=timeout_ms)  # scrolls it into view, as a reader would
        except Exception as err:  # noqa: BLE001 - playwright's TimeoutError
            findings.append(Finding(rel, "lab", "solution", f"cannot click a solution: {err}"))
        page.wait_for_timeout(300)
        opened = page.evaluate(
            "(shown) => { const d = document.querySelector(`${shown} details.myst-exercise`);"
            " return d.open && [...d.children].some((c) => c.tagName !== 'SUMMARY'"
            " && c.checkVisibility()); }",
            SHOWN,
        )
        if not opened:
            findings.append(Finding(rel, "lab", "solution", "the first solution does not open"))
        if shots:
            page.screenshot(path=str(shots / f"{stem}-solution-open.png"))
    for text, count in sorted({e: events.count(e) for e in events}.items()):
        findings.append(Finding(rel, "lab", "console", f"{text[:160]} (x{count})"))
    page.close()
    return findings


def check_lab(notebook_dir: Path, notebooks: list[str], chromium: str | None = None,
              shots: Path | None = None, timeout_s: float = 120.0) -> list[Finding]:  # fmt: skip
    """Start JupyterLab on ``notebook_dir``, check ``notebooks`` (relative paths) in Chromium.

    Raises:
        ValueError: no Chromium, a notebook that does not exist, or JupyterLab does not start.
    """
    from playwright.sync_api import sync_playwright

    notebook_dir = Path(notebook_dir).resolve()
    missing = [rel for rel in notebooks if not (notebook_dir / rel).is_file()]
    if missing:
        raise ValueError(f"notebooks={missing} not found under {notebook_dir}")
    chromium = find_chromium(chromium)
    if chromium is None:
        raise ValueError("no Chromium found: run tools/install_chromium.sh or set CHROMIUM")
    if shots:
        shots.mkdir(parents=True, exist_ok=True)
    before = _digest([notebook_dir / rel for rel in notebooks])
    findings: list[Finding] = []
    current = [""]

    def route(route, request) -> None:
        if (urlsplit(request.url).hostname or "") in LOCAL_HOSTS or request.url.startswith("data:"):
            route.continue_()
            return
        findings.append(Finding(current[0], "lab", "external", request.url))
        route.abort()

    with tempfile.TemporaryDirectory(prefix="check-lab-") as state:
        server, origin, token = start_lab(notebook_dir, Path(state), timeout_s)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
                context = browser.new_context(viewport=VIEWPORT)
                context.route("**/*", route)
                for rel in notebooks:
                    current[0] = rel
                    findings += check_notebook(
                        context, origin, token, notebook_dir, rel, shots, int(timeout_s * 1000)
                    )
                browser.close()
        finally:
            stop_lab(server)
    after = _digest([notebook_dir / rel for rel in notebooks])
    findings += [
        Finding(rel, "lab", "changed", "the file changed on disk during the check")
        for rel, old, new in zip(notebooks, before, after, strict=True)
        if old != new
    ]
    return findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help=f"relative to --notebook-dir ({NOTEBOOKS})")
    parser.add_argument("--notebook-dir", type=Path, default=ROOT / "notebooks")
    parser.add_argument("--chromium", help="browser executable (default: chromium on PATH)")
    parser.add_argument("--screenshots", type=Path, default=ROOT / "_build" / "lab-screenshots")
    parser.add_argument("--strict", action="store_true", help="notes fail the check too")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per wait")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or list(NOTEBOOKS)
    start = time.monotonic()
    try:
        findings = check_lab(args.notebook_dir, notebooks, args.chromium, args.screenshots,
                             args.timeout)  # fmt: skip
    except ValueError as err:
        print(f"check_lab: {err}", file=sys.stderr)
        return 2
    failing = [f for f in findings if args.strict or f.kind not in NOTE_KINDS]
    for rel in notebooks:
        mine = [f for f in findings if f.page == rel]
        bad = [f for f in mine if f in failing]
        print(f"{'FAIL' if bad else 'ok  '} {rel}" + (f"  ({len(bad)})" if bad else ""))
        for f in mine:
            print(f"     {'' if f in bad else 'note '}{f.kind}: {f.detail}")
    for f in findings:
        if f.page not in notebooks:
            print(f"FAIL {f}")
    shot_files = sorted(args.screenshots.glob("*.png")) if args.screenshots.is_dir() else []
    print(f"screenshots: {', '.join(str(p) for p in shot_files) or 'none'}")
    notes = len(findings) - len(failing)
    print(f"{len(notebooks)} notebooks in JupyterLab + jupyterlab-myst, "
          f"{time.monotonic() - start:.0f} s: {len(failing)} problems, {notes} notes")  # fmt: skip
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
