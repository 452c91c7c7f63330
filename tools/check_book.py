"""Check the built book the way readers see it: every page in headless Chromium.

Serves the HTML build on localhost, opens every page at a laptop width (1280 px) and a phone
width (390 px) with every request to another host blocked, and reports, page by page:

* ``console``   a console error or an uncaught exception;
* ``external``  a request to a host other than localhost (blocked, and counted as a failure);
* ``http``      a request to the local server that failed (404: a missing file);
* ``raw-math``  ``$$``, ``\\begin{``, ``\\frac``... left in the visible text (outside MathJax);
* ``raw-role``  a MyST role or glue left raw (``{term}``, ``{glue:text}``, ``{cite:p}``...);
* ``image``     a broken image (naturalWidth 0);
* ``caption``   an image in the content with no figure caption, or no real alt text;
* ``shrunk``    a figure shown at under 70 % of its pixel width at 1280 px (text illegible);
* ``link``      an internal link to a missing page or a missing #anchor;
* ``overflow``  a code block, table or display equation wider than its column (rule below),
  or any other element (a long inline formula, an unbreakable word) that runs past it;
* ``nan``       ``NaN`` shown in a table cell;
* ``stderr``    a cell's stderr output on the page (a kernel warning, a progress bar);
* ``toc``       a page that no table-of-contents link reaches.

Width rule (allowance 8 px, for sub-pixel rounding and borders): code blocks must fit the
column at both widths (the book's CSS wraps long lines, so a block that still does not fit
has one unbreakable token that the notebook should shorten); tables and display equations
must fit at 1280 px, the layout the book is written for; at 390 px they may be wider only
inside a horizontal scroll box (the book's CSS gives those a visible scrollbar), since a
phone cannot show a six-column table or a long equation any other way.

Usage::

    .venv/bin/python tools/check_book.py _build/html            # every page
    .venv/bin/python tools/check_book.py _build/html --page 'notebooks/03*' --page book/intro
    make check-book                                             # the same, for CI

Exit status 1 when anything is found. Screenshots go to ``_build/screenshots/``.
"""

from __future__ import annotations

import argparse
import fnmatch
import functools
import html.parser
import http.server
import os
import re
import shutil
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

WIDTHS = {"laptop": (1280, 900), "phone": (390, 844)}
ALLOWANCE_PX = 8
MIN_FIGURE_SCALE = 0.7
CONTENT_SELECTORS = ["article.bd-article", "main", "body"]
# Not pages: assets. Sphinx's generated pages are checked but need no TOC entry.
SKIP_DIRS = {"_static", "_sources", "_images", "_downloads", "_sphinx_design_static"}
GENERATED_PAGES = {"genindex.html", "search.html", "py-modindex.html", "prf-prf.html"}
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
# Debian's package first; GitHub's Ubuntu runners ship Google Chrome instead.
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
RAW_MATH = re.compile(r"\$\$|\\begin\{|\\end\{|\\frac|\\mathbf|\\left[(\[]")
RAW_ROLE = re.compile(
    r"\{(?:glue|term|cite|doc|ref|numref|eq|prf:ref|download|math|abbr|sub|sup)[\w:-]*\}`?"
    r"|\{[a-z][\w:-]*\}`|^:::|```\{"
)
# (file stem, page pattern, viewport, CSS selector to scroll to or None)
SCREENSHOTS = [
    ("intro-1280", "book/intro.html", "laptop", None),
    ("ch07-math-1280", "notebooks/07_*.html", "laptop", "mjx-container[display='true']"),
    ("ch03-figures-1280", "notebooks/03_*.html", "laptop", "figure img, .cell_output img"),
    ("ch03-figures-390", "notebooks/03_*.html", "phone", "figure img, .cell_output img"),
]
PAGE_JS = (Path(__file__).with_name("check_book_page.js")).read_text(encoding="utf-8")


@dataclass(frozen=True)
class Finding:
    """One problem on one page: ``page`` relative to the build, ``kind`` from the list above."""

    page: str
    width: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.page} [{self.width}] {self.kind}: {self.detail}"


def find_chromium(explicit: str | None = None) -> str | None:
    """Path of the system Chromium: ``explicit``, ``$CHROMIUM``, then the first of BROWSERS."""
    for name in (explicit, os.environ.get("CHROMIUM"), *BROWSERS):
        if name and (path := shutil.which(name)):
            return path
    return None


def _is_redirect(path: Path) -> bool:
    """Jupyter Book's top index.html only redirects to the root page, which is checked."""
    head = path.read_text(encoding="utf-8", errors="replace")[:2000].lower()
    return 'http-equiv="refresh"' in head


def list_pages(build: Path, patterns: list[str] | None = None) -> list[str]:
    """Every reading page under ``build`` (relative POSIX paths), optionally only those matching.

    A pattern matches the path with or without ``.html`` (``notebooks/03*``, ``book/intro``).
    """
    pages = []
    for path in sorted(build.rglob("*.html")):
        rel = path.relative_to(build).as_posix()
        if rel.split("/")[0] in SKIP_DIRS or _is_redirect(path):
            continue
        if patterns and not any(
            fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(rel.removesuffix(".html"), p)
            for p in patterns
        ):
            continue
        pages.append(rel)
    return pages


class _IdParser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if value and (key == "id" or (tag == "a" and key == "name")):
                self.ids.add(value)


@functools.cache
def _ids_in(path: Path) -> frozenset[str]:
    parser = _IdParser()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return frozenset(parser.ids)


def check_links(build: Path, page: str, links: list[dict], origin: str) -> list[str]:
    """Problems with the internal links of one page: missing target file or #anchor."""
    problems = []
    for link in links:
        url = urlsplit(link["href"])
        if f"{url.scheme}://{url.netloc}" != origin or url.scheme not in ("http", "https"):
            continue
        target = build / unquote(url.path).lstrip("/")
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            problems.append(f"link {link['raw']!r} ({link['text']!r}): no file {url.path}")
            continue
        fragment = unquote(url.fragment)
        if fragment and target.suffix == ".html" and fragment not in _ids_in(target):
            problems.append(f"link {link['raw']!r} ({link['text']!r}): no anchor #{fragment}")
    return sorted(set(problems))


def judge(page: str, width: str, seen: dict) -> list[Finding]:
    """Turn what check_book_page.js measured on one page into findings (the rules live here)."""
    found: list[Finding] = []

    def add(kind: str, detail: str) -> None:
        found.append(Finding(page, width, kind, detail))

    for item in seen["rawText"]:
        for rx, kind in ((RAW_MATH, "raw-math"), (RAW_ROLE, "raw-role")):
            if m := rx.search(item["text"]):
                snippet = item["text"].strip().replace("\n", " ")[:70]
                add(kind, f"{m.group(0)!r} in {snippet!r} {item['where']}")
    for img in seen["images"]:
        where = f"{img['src']} {img['where']}"
        if img["naturalWidth"] == 0:
            add("image", f"broken image {where}")
            continue
        if width == "laptop":
            alt = img["alt"].strip()
            if not img["caption"]:
                add("caption", f"image without a figure caption {where}")
            if not alt or re.search(r"[\\/]|\.(png|jpe?g|svg|gif|webp)$", alt, re.I):
                add("caption", f"image without alt text (alt={alt!r}) {where}")
            scale = img["shownWidth"] / img["naturalWidth"]
            if img["visible"] and scale < MIN_FIGURE_SCALE:
                add("shrunk", f"figure shown at {scale:.0%} of its {img['naturalWidth']} px {where}")
    for block in seen["overflow"]:
        allowed = width == "phone" and block["kind"] != "code" and block["scrolls"]
        if not allowed:
            how = "scrolls" if block["scrolls"] else "clipped"
            add(
                "overflow",
                f"{block['kind']} {block['width']} px in a {block['column']} px column ({how}) "
                f"{block['where']} {block['text'][:50]!r}",
            )
    for cell in seen["nanCells"]:
        add("nan", f"{cell['text']!r} in a table {cell['where']}")
    if width == "laptop":  # the same output at both widths: report it once
        for out in seen["stderr"]:
            add("stderr", f"a cell wrote to stderr {out['where']}: {out['text']!r}")
    return found


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def serve(build: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve ``build`` on a free localhost port in a daemon thread; returns (server, origin)."""
    handler = functools.partial(_QuietHandler, directory=str(build))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _route(findings: list[Finding], current: list[str], width: str, route, request) -> None:
    """Let localhost requests through; abort any other and record it as a finding."""
    if (urlsplit(request.url).hostname or "") in LOCAL_HOSTS or request.url.startswith("data:"):
        route.continue_()
        return
    findings.append(Finding(current[0], width, "external", request.url))
    route.abort()


def _open(context, url: str, events: list[tuple[str, str]]):
    page = context.new_page()
    # "Failed to load resource" duplicates the external/http finding for the same request.
    page.on(
        "console",
        lambda m: m.type == "error"
        and not m.text.startswith("Failed to load resource")
        and events.append(("console", m.text)),
    )
    page.on("pageerror", lambda e: events.append(("console", f"uncaught {e}")))
    page.on(
        "response",
        lambda r: r.status >= 400 and events.append(("http", f"{r.status} {r.url}")),
    )
    page.goto(url, wait_until="load")
    page.evaluate(
        "async () => { const s = window.MathJax && MathJax.startup;"
        " if (s && s.promise) await s.promise; }"
    )
    return page


def _screenshot(page, selector: str | None, path: Path) -> None:
    if selector:
        page.evaluate(
            "(sel) => { const el = document.querySelector(sel);"
            " if (el) el.scrollIntoView({block: 'start'}); window.scrollBy(0, -80); }",
            selector,
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))


def check_site(
    build: Path,
    pages: list[str] | None = None,
    chromium: str | None = None,
    screenshots: Path | None = None,
    widths: tuple[str, ...] = ("laptop", "phone"),
) -> list[Finding]:
    """Open ``pages`` (default: all) of the HTML build in Chromium; return every finding.

    Raises:
        ValueError: ``build`` has no index.html, or no Chromium was found.
    """
    from playwright.sync_api import sync_playwright

    build = Path(build).resolve()
    if not (build / "index.html").is_file():
        raise ValueError(f"build={str(build)!r} has no index.html; build the book first")
    chromium = find_chromium(chromium)
    if chromium is None:
        raise ValueError("no Chromium found: run tools/install_chromium.sh or set CHROMIUM")
    pages = list_pages(build) if pages is None else pages
    server, origin = serve(build)
    findings: list[Finding] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            for width in widths:
                w, h = WIDTHS[width]
                context = browser.new_context(viewport={"width": w, "height": h})

                current = [""]
                context.route("**/*", functools.partial(_route, findings, current, width))
                for rel in pages:
                    current[0] = rel
                    events: list[tuple[str, str]] = []
                    page = _open(context, f"{origin}/{rel}", events)
                    seen = page.evaluate(
                        PAGE_JS,
                        {"allowance": ALLOWANCE_PX, "contentSelectors": CONTENT_SELECTORS},
                    )
                    page.wait_for_timeout(50)  # let late console messages arrive
                    findings += [Finding(rel, width, k, d) for k, d in sorted(set(events))]
                    findings += judge(rel, width, seen)
                    if width == "laptop":
                        findings += [
                            Finding(rel, width, "link", p)
                            for p in check_links(build, rel, seen["links"], origin)
                        ]
                    for stem, pattern, shot_width, selector in SCREENSHOTS:
                        if screenshots and shot_width == width and fnmatch.fnmatch(rel, pattern):
                            _screenshot(page, selector, screenshots / f"{stem}.png")
                    page.close()
                context.close()
            browser.close()
    finally:
        server.shutdown()
    return findings


def check_toc(build: Path) -> list[Finding]:
    """Pages that no link in the root page's navigation reaches (unreachable from the TOC)."""
    build = Path(build).resolve()
    text = (build / "index.html").read_text(encoding="utf-8")
    start = re.search(r'url=([^"]+)"', text)  # Jupyter Book's index.html redirects to the root
    root = build / start.group(1) if start else build / "index.html"
    nav = root.read_text(encoding="utf-8")
    linked = {
        (root.parent / unquote(h.split("#")[0])).resolve()
        for h in re.findall(r'<a[^>]+class="reference internal"[^>]+href="([^"#][^"]*)"', nav)
    }
    linked.add(root.resolve())
    return [
        Finding(rel, "-", "toc", "no table-of-contents link reaches this page")
        for rel in list_pages(build)
        if (build / rel).resolve() not in linked and rel not in GENERATED_PAGES
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build", nargs="?", default="_build/html", type=Path)
    parser.add_argument("--page", action="append", help="only pages matching (repeatable)")
    parser.add_argument("--chromium", help="browser executable (default: chromium on PATH)")
    parser.add_argument("--screenshots", type=Path, help="default: BUILD/../screenshots")
    args = parser.parse_args(argv)
    build = args.build.resolve()
    pages = list_pages(build, args.page) if (build / "index.html").is_file() else []
    if args.page and not pages:
        parser.error(f"--page {args.page} matches no page under {build}")
    shots = args.screenshots or build.parent / "screenshots"
    try:
        findings = check_site(build, pages or None, args.chromium, shots)
    except ValueError as err:
        print(f"check_book: {err}", file=sys.stderr)
        return 2
    if not args.page:
        findings += check_toc(build)
    checked = pages or list_pages(build)
    for rel in checked:
        mine = [f for f in findings if f.page == rel]
        print(f"{'FAIL' if mine else 'ok  '} {rel}" + (f"  ({len(mine)})" if mine else ""))
        for f in mine:
            print(f"     [{f.width}] {f.kind}: {f.detail}")
    shot_files = sorted(shots.glob("*.png")) if shots.is_dir() else []
    print(f"screenshots: {', '.join(str(p) for p in shot_files) or 'none'}")
    print(f"{len(checked)} pages at {', '.join(WIDTHS)}: {len(findings)} problems")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
