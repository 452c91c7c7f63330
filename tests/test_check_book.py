"""tools/check_book.py reports each fault a reader would see, on tiny pages built here.

Skipped when Playwright or a system Chromium is missing (``make check-book`` installs both).
"""

from __future__ import annotations

import base64
import importlib.util
import struct
import sys
import zlib
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools"
_spec = importlib.util.spec_from_file_location("check_book", TOOLS / "check_book.py")
check_book = importlib.util.module_from_spec(_spec)
sys.modules["check_book"] = check_book
_spec.loader.exec_module(check_book)

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
if check_book.find_chromium() is None:
    pytest.skip("no system chromium (tools/install_chromium.sh)", allow_module_level=True)


def _png(width: int, height: int) -> bytes:
    """A blank grey PNG of the given size, made without any imaging library."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        body = tag + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


CLEAN_FIGURE = (
    '<figure id="fig-ok"><img src="ok.png" alt="A grey square">'
    "<figcaption>A grey square.</figcaption></figure>"
)
PAGES = {
    "clean": f'<p id="top">Fine text with <code>$$x$$</code> in code.</p>{CLEAN_FIGURE}'
    '<a href="clean.html#top">self</a>',
    "console": "<script>console.error('boom')</script><p>text</p>",
    "pageerror": "<script>const A = 1;</script><script>const A = 2;</script>",
    "external": '<script src="http://example.com/x.js"></script><p>text</p>',
    "raw_math": r"<p>The loss is $$\frac{a}{b}$$ here.</p>",
    "raw_role": "<p>See {term}`fusion` and {glue:text}`acc`.</p>",
    "broken_image": '<figure><img src="missing.png" alt="x"><figcaption>c</figcaption></figure>',
    "no_caption": '<img src="ok.png" alt="_images/ok.png">',
    "broken_link": '<a href="nowhere.html">a</a> <a href="clean.html#no-such-id">b</a>',
    "wide_code": "<pre style='overflow:auto'>" + "x" * 400 + "</pre>",
    "wide_table": "<table><tr>" + "<td>column_value</td>" * 60 + "</tr></table>",
    "wide_inline": "<p><span style='white-space:nowrap'>" + "word " * 200 + "</span></p>",
    "nan": "<table><tr><th>gain</th></tr><tr><td>NaN</td></tr></table>",
    "shrunk": '<figure><img src="big.png" alt="Big" style="width:100%">'
    "<figcaption>Big.</figcaption></figure>",
    "stderr": '<div class="cell_output docutils container"><div class="output stderr">'
    "<pre>UserWarning: the kernel said something</pre></div></div>",
}
EXPECTED = {
    "console": ("console", "boom"),
    "pageerror": ("console", "already been declared"),
    "external": ("external", "example.com"),
    "raw_math": ("raw-math", "'$$' in"),  # the first raw token found is $$
    "raw_role": ("raw-role", "{term}"),
    "broken_image": ("image", "missing.png"),
    "no_caption": ("caption", "without a figure caption"),
    "broken_link": ("link", "no file /nowhere.html"),
    "wide_code": ("overflow", "code"),
    "wide_table": ("overflow", "table"),
    "wide_inline": ("overflow", "text"),
    "nan": ("nan", "NaN"),
    "shrunk": ("shrunk", "of its 2000 px"),
    "stderr": ("stderr", "UserWarning"),
}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("site")
    (root / "ok.png").write_bytes(_png(200, 100))
    (root / "big.png").write_bytes(_png(2000, 20))
    (root / "index.html").write_text('<meta http-equiv="refresh" content="0; url=clean.html">')
    for name, body in PAGES.items():
        (root / f"{name}.html").write_text(
            "<!doctype html><html><head><meta charset='utf-8'></head><body>"
            f"<main style='width:600px;padding:0'>{body}</main></body></html>",
            encoding="utf-8",
        )
    return root


@pytest.fixture(scope="module")
def findings(site: Path) -> list:
    pages = [f"{name}.html" for name in PAGES]
    return check_book.check_site(site, pages, screenshots=None, widths=("laptop",))


def test_clean_page_has_no_findings(findings):
    assert [str(f) for f in findings if f.page == "clean.html"] == []


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_fault_is_reported(findings, name):
    kind, text = EXPECTED[name]
    mine = [f for f in findings if f.page == f"{name}.html"]
    assert any(f.kind == kind and text in f.detail for f in mine), [str(f) for f in mine]


def test_alt_text_that_is_a_path_is_reported(findings):
    mine = [f.detail for f in findings if f.page == "no_caption.html"]
    assert any("alt text" in d for d in mine), mine


def test_broken_anchor_is_reported(findings):
    mine = [f.detail for f in findings if f.page == "broken_link.html"]
    assert any("no anchor #no-such-id" in d for d in mine), mine


def test_phone_allows_a_wide_table_only_in_a_scroll_box():
    seen = {"rawText": [], "images": [], "nanCells": [], "stderr": [], "overflow": [
        {"kind": "table", "width": 900, "column": 358, "scrolls": True, "where": "", "text": ""},
        {"kind": "code", "width": 900, "column": 358, "scrolls": True, "where": "", "text": ""},
    ]}
    phone = check_book.judge("p.html", "phone", seen)
    laptop = check_book.judge("p.html", "laptop", seen)
    assert [f.detail.split()[0] for f in phone] == ["code"]
    assert len(laptop) == 2


def test_screenshot_is_written(site, tmp_path, monkeypatch):
    monkeypatch.setattr(check_book, "SCREENSHOTS", [("shot", "clean.html", "laptop", None)])
    check_book.check_site(site, ["clean.html"], screenshots=tmp_path, widths=("laptop",))
    assert (tmp_path / "shot.png").read_bytes()[:4] == base64.b64decode("iVBORw==")
