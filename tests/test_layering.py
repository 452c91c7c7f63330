"""Imports inside ``mmtutor`` go one way only: the layering that CONTRIBUTING.md writes down.

The rules are read from CONTRIBUTING.md itself (section "Layout and dependency direction"),
so the page and this test cannot drift apart:

* the arrow chains ``A <- B, C <- D``: ``B`` and ``C`` may import ``A`` (and what ``A`` may
  import), ``D`` may import ``B`` and ``C`` (and so on down);
* "``metrics`` and ``plots`` import nothing of ours but each other (``plots`` -> ``metrics``)";
* "Nothing in the package imports ``train`` or ``plots`` except ``tasks``, ``experiments``,
  ``cli.py`` ...".

Every ``import`` in every module (also inside functions) is parsed with :mod:`ast` and mapped
to its top-level part of the package (``mmtutor/fusion/gated.py`` is ``fusion``); imports
within one part are free.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mmtutor"
CONTRIBUTING = ROOT / "CONTRIBUTING.md"
NAME = r"`(\w+)(?:\.py)?`"


def layering_text() -> str:
    text = CONTRIBUTING.read_text(encoding="utf-8")
    start = text.index("## Layout and dependency direction")
    return text[start:text.index("\n## ", start + 1)]


def parse_rules(text: str) -> tuple[dict[str, set[str]], set[str], set[str]]:
    """``(may_import, leaves, restricted)`` read from CONTRIBUTING.md.

    ``may_import[x]``: the parts ``x`` may import (transitively closed); ``leaves``: parts
    that import only what the explicit ``a -> b`` arrows allow, and that any part may import;
    ``restricted[y]``: the only parts that may import ``y``.
    """
    direct: dict[str, set[str]] = {}
    for line in text.splitlines():
        if "<-" not in line or line.startswith(("mmtutor/", " ")):
            continue
        groups = [re.findall(NAME, part) for part in line.split("<-")]
        assert all(groups), f"CONTRIBUTING.md: cannot read the chain {line!r}"
        for lower, upper in zip(groups, groups[1:], strict=False):
            for u in upper:
                direct.setdefault(u, set()).update(lower)
            for low in lower:
                direct.setdefault(low, set())
    for a, b in re.findall(NAME + r" -> " + NAME, text):
        direct.setdefault(a, set()).add(b)
        direct.setdefault(b, set())
    leaves = re.search(NAME + " and " + NAME + " import nothing of ours", text)
    only = re.search(r"Nothing in\s+the package imports (.+?) except (.+?) and the notebooks",
                     text, flags=re.S)
    assert direct and leaves and only, (
        "CONTRIBUTING.md no longer states the layering in the words this test reads; "
        "update tests/test_layering.py together with it"
    )
    closed = {}
    for part in direct:  # transitive closure: what a lower part may import, so may a higher
        seen, todo = set(), list(direct[part])
        while todo:
            p = todo.pop()
            if p not in seen:
                seen.add(p)
                todo.extend(direct.get(p, ()))
        closed[part] = seen
    restricted = set(re.findall(NAME, only.group(1)))
    allowed_importers = set(re.findall(NAME, only.group(2)))
    return closed, set(leaves.groups()), {r: allowed_importers for r in restricted}


MAY_IMPORT, LEAVES, RESTRICTED = parse_rules(layering_text())


def part_of(module: str) -> str:
    """``"mmtutor.fusion.gated"`` -> ``"fusion"``; the package root itself is ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imports_of(path: Path) -> list[tuple[int, str]]:
    """``(line, absolute module)`` of every ``mmtutor`` import in ``path``."""
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    package = package.removesuffix(".__init__")
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "mmtutor"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from .x import y
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "mmtutor":
                continue
            if target == "mmtutor":  # from mmtutor import metrics: a part, or the root's API
                for a in node.names:
                    sub = PACKAGE / a.name
                    is_part = sub.is_dir() or sub.with_suffix(".py").exists()
                    found.append((node.lineno, f"mmtutor.{a.name}" if is_part else "mmtutor"))
            else:
                found.append((node.lineno, target))
    return found


def violations(path: Path) -> list[str]:
    here = part_of(".".join(path.relative_to(ROOT).with_suffix("").parts))
    if path.parent == PACKAGE and path.name in ("__init__.py", "__main__.py"):
        here = ""  # the package root re-exports the public API
    where = path.relative_to(ROOT)
    out = []
    for line, module in imports_of(path):
        there = part_of(module)
        if there == here:
            continue
        what = f"{where}:{line} imports {module}"
        if here and not there:
            out.append(f"{what}: the package root imports every part; import from the part "
                       "that defines the name instead")
            continue
        if there in RESTRICTED and here not in RESTRICTED[there]:
            out.append(f"{what}: only {sorted(RESTRICTED[there])} may import {there!r}")
            continue
        if not here:
            continue
        if here not in MAY_IMPORT:
            out.append(f"{what}: {here!r} is not in the layering of CONTRIBUTING.md; add it there")
        elif there not in MAY_IMPORT:
            out.append(f"{what}: {there!r} is not in the layering of CONTRIBUTING.md; add it there")
        elif here in LEAVES and there not in MAY_IMPORT[here]:
            out.append(f"{what}: {here!r} may import nothing of ours but {sorted(MAY_IMPORT[here])}")
        elif there not in MAY_IMPORT[here] and there not in LEAVES:
            out.append(f"{what}: against the layering, where {here!r} may import only "
                       f"{sorted(MAY_IMPORT[here])} (change the import, or the layering in "
                       "CONTRIBUTING.md if the design changed)")
    return out


def test_rules_are_read_from_contributing():
    assert MAY_IMPORT["utils"] == set()
    assert MAY_IMPORT["fusion"] == {"utils"}
    assert {"utils", "data", "encoders", "fusion", "heads"} <= MAY_IMPORT["models"]
    assert "models" in MAY_IMPORT["train"] and "train" in MAY_IMPORT["cli"]
    assert MAY_IMPORT["plots"] == {"metrics"} and LEAVES == {"metrics", "plots"}
    assert set(RESTRICTED) == {"train", "plots"}
    assert RESTRICTED["train"] == {"tasks", "experiments", "cli"}


def test_every_part_of_the_package_is_in_the_layering():
    parts = {p.stem for p in PACKAGE.iterdir()
             if (p.is_dir() and (p / "__init__.py").exists())
             or (p.suffix == ".py" and not p.name.startswith("__"))}
    assert parts - set(MAY_IMPORT) == set(), "document these in CONTRIBUTING.md's layering"


def test_imports_follow_the_layering():
    found = [v for path in sorted(PACKAGE.rglob("*.py")) for v in violations(path)]
    assert not found, "imports against the layering of CONTRIBUTING.md:\n" + "\n".join(found)


def test_the_checker_catches_a_wrong_way_import(tmp_path, monkeypatch):
    """A test that cannot fail proves nothing: plant bad imports in a copy and see them."""
    fake = tmp_path / "mmtutor"
    (fake / "fusion").mkdir(parents=True)
    (fake / "fusion" / "bad.py").write_text(
        "from mmtutor.models import build_classifier\n"  # fusion is below models
        "from ..train import fit\n"  # only tasks, experiments, cli may import train
        "from mmtutor import get_device\n"  # the package root, from inside the package
        "import mmtutor.utils\n"  # fine
    )
    (fake / "metrics.py").write_text("def f():\n    from mmtutor.data import Vocab\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    bad = violations(fake / "fusion" / "bad.py")
    assert [v.split(" ")[0] for v in bad] == [f"mmtutor/fusion/bad.py:{i}" for i in (1, 2, 3)], bad
    assert "where 'fusion' may import only ['utils']" in bad[0]
    assert "may import 'train'" in bad[1] and "package root" in bad[2]
    assert "may import nothing of ours" in violations(fake / "metrics.py")[0]
