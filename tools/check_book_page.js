// In-page half of tools/check_book.py: runs inside Chromium on one loaded book page and
// returns what the reader would see wrong. Python decides what counts as a failure; this
// script only measures. Called as page.evaluate(SOURCE, {allowance, contentSelectors}).
async ({ allowance, contentSelectors }) => {
  const column =
    contentSelectors.map((s) => document.querySelector(s)).find((el) => el) || document.body;
  const out = {
    column: 0, rawText: [], images: [], overflow: [], nanCells: [], stderr: [], links: [], ids: [],
  };

  // Make every image load (lazy ones too) and wait for it, so naturalWidth means something.
  const imgs = Array.from(column.querySelectorAll("img"));
  await Promise.all(imgs.map(async (img) => {
    if (img.loading === "lazy") img.loading = "eager";
    try { await img.decode(); } catch (e) { /* a broken image: reported below */ }
  }));

  const colBox = column.getBoundingClientRect();
  const colStyle = getComputedStyle(column);
  const colRight = colBox.right - parseFloat(colStyle.paddingRight || "0");
  out.column = Math.round(colRight - colBox.left - parseFloat(colStyle.paddingLeft || "0"));

  const label = (el) => {
    const text = (el.innerText || el.textContent || "").trim().replace(/\s+/g, " ");
    return text.slice(0, 60);
  };
  const shown = (el) => el.getClientRects().length > 0;
  const anchorOf = (el) => {
    const owner = el.closest("[id]");
    return owner && column.contains(owner) ? "#" + owner.id : "";
  };

  // 1. Text a reader sees that the build should have turned into something else.
  const skip = "script, style, noscript, pre, code, kbd, samp, textarea, mjx-container, .MathJax";
  const walker = document.createTreeWalker(column, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || parent.closest(skip)) continue;
    const text = node.textContent;
    if (text.trim()) out.rawText.push({ text, where: anchorOf(parent) });
  }

  // 2. Images: loaded? captioned? alt text? scale on screen?
  for (const img of imgs) {
    if (!img.getAttribute("src")) continue;
    const fig = img.closest("figure");
    const cap = fig ? fig.querySelector("figcaption") : null;
    out.images.push({
      src: img.getAttribute("src"),
      alt: img.getAttribute("alt") || "",
      complete: img.complete,
      naturalWidth: img.naturalWidth,
      shownWidth: img.getBoundingClientRect().width,
      visible: shown(img),
      caption: cap ? label(cap) : "",
      where: anchorOf(img),
    });
  }

  // 3. Blocks wider than the column: code, tables, display equations.
  const scrollsX = (el) => ["auto", "scroll"].includes(getComputedStyle(el).overflowX);
  const blocks = column.querySelectorAll("pre, table, mjx-container[display='true']");
  for (const el of blocks) {
    if (!shown(el)) continue;
    if (el.matches("table") && el.parentElement.closest("table")) continue;
    const box = el.getBoundingClientRect();
    // The content's full width, and how far it would reach past the column's right edge.
    const width = Math.max(el.scrollWidth, box.width);
    const excess = Math.round(box.left + width - colRight);
    if (excess <= allowance) continue;
    // It does not fit: does the reader get a scrollbar (a scroll box inside the column)?
    let scroller = null;
    for (let e = el; e && e !== column; e = e.parentElement) {
      if (scrollsX(e) && e.scrollWidth > e.clientWidth + 1) { scroller = e; break; }
    }
    const kind = el.matches("pre") ? "code" : el.matches("table") ? "table" : "equation";
    const sbox = scroller ? scroller.getBoundingClientRect() : box;
    out.overflow.push({
      kind,
      width: Math.round(width),
      column: out.column,
      scrolls: !!scroller && sbox.right <= colRight + allowance,
      where: anchorOf(el),
      text: label(el),
    });
  }

  // 3b. Anything else that runs past the column's right edge outside a scroll box (a long
  // inline formula or unbreakable word): on a phone it widens the page or is cut off.
  const handled = "pre, table, mjx-container[display='true']";
  const contained = (el) => {
    for (let e = el.parentElement; e && e !== column; e = e.parentElement) {
      if (e.matches(handled) || getComputedStyle(e).overflowX !== "visible") return true;
    }
    return false;
  };
  for (const el of column.querySelectorAll("*")) {
    if (out.overflow.length > 40) break;
    // Header links ("#") are invisible until hovered.
    if (el.matches(handled) || el.matches("a.headerlink") || !shown(el)) continue;
    const right = el.getBoundingClientRect().right;
    if (right <= colRight + allowance || contained(el)) continue;
    const parent = el.parentElement;
    if (parent !== column && parent.getBoundingClientRect().right > colRight + allowance) continue;
    out.overflow.push({
      kind: "text", width: Math.round(right - colBox.left), column: out.column,
      scrolls: false, where: anchorOf(el), text: el.tagName.toLowerCase() + ": " + label(el),
    });
  }

  // 4. NaN shown in a table cell.
  for (const cell of column.querySelectorAll("td, th")) {
    const text = cell.textContent.trim();
    if (/^(nan|NaN|<NA>)$/.test(text) || /\bNaN\b/.test(text)) {
      const table = cell.closest("table");
      out.nanCells.push({ text, where: anchorOf(table) });
    }
  }

  // 5. What a cell wrote to stderr (a warning, a progress bar): the reader sees it as noise.
  for (const el of column.querySelectorAll(".cell_output .stderr, .cell_output .output.stderr")) {
    out.stderr.push({ text: el.textContent.trim().slice(0, 120), where: anchorOf(el) });
  }

  // 6. Links and ids, checked in Python against the built files.
  for (const a of document.querySelectorAll("a[href]")) {
    out.links.push({ href: a.href, raw: a.getAttribute("href"), text: label(a) });
  }
  for (const el of document.querySelectorAll("[id], a[name]")) out.ids.push(el.id || el.name);
  return out;
};
