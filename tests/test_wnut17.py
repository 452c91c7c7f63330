"""Tests of mmtutor.data.wnut17: the WNUT-17 corpus shipped as package data."""

from __future__ import annotations

import hashlib
import re
import shutil
from importlib import resources
from pathlib import Path

import pytest

from mmtutor.data import WNUT17_FILES, WNUT17_PUBLISHED, WNUT17_TYPES, get_spans, load_wnut17

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wnut():
    return load_wnut17()


def package_folder():
    return resources.files("mmtutor.data").joinpath("wnut17")


def test_the_splits_have_the_published_sizes(wnut):
    # sentences, tokens and entities per split, as the shared task's README and ours state
    sizes = {name: (len(split), sum(len(s) for s in split),
                    sum(len(get_spans(s.tags)) for s in split))
             for name, split in wnut._asdict().items()}
    assert sizes == {"train": (3394, 62730, 1975), "dev": (1009, 15733, 836),
                     "test": (1287, 23394, 1079)}


def test_every_split_uses_the_six_types_in_iob2(wnut):
    tags = {t for split in wnut for s in split for t in s.tags}
    assert tags == {"O"} | {f"{p}-{k}" for p in "BI" for k in WNUT17_TYPES}
    for split in wnut:
        for sentence in split:
            assert len(sentence.tokens) == len(sentence.tags) and sentence.image_path is None


def test_the_package_files_are_the_verbatim_copies_the_readme_lists():
    folder = package_folder()
    readme = folder.joinpath("README.md").read_text(encoding="utf-8")
    listed = dict((name, digest) for digest, name in re.findall(r"([0-9a-f]{64})  (\S+)", readme))
    assert set(listed) == set(WNUT17_FILES.values())
    for name, digest in listed.items():
        assert hashlib.sha256(folder.joinpath(name).read_bytes()).hexdigest() == digest, name
    assert "CC-BY 4.0" in readme and "W17-4418" in readme


def test_a_copy_with_a_corrupted_line_names_file_and_line(tmp_path):
    folder = package_folder()
    for name in WNUT17_FILES.values():
        with resources.as_file(folder.joinpath(name)) as path:
            shutil.copy(path, tmp_path / name)
    assert [len(s) for s in load_wnut17(tmp_path)] == [3394, 1009, 1287]  # the copy reads
    dev = tmp_path / WNUT17_FILES["dev"]
    lines = dev.read_text(encoding="utf-8").split("\n")
    number = next(i for i, line in enumerate(lines, start=1) if line.endswith("\tB-person"))
    lines[number - 1] = lines[number - 1].replace("\tB-person", "\tB_person")  # not a BIO tag
    dev.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(dev))}:{number}: .*B_person"):
        load_wnut17(tmp_path)


def test_a_missing_folder_or_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="is not a folder"):
        load_wnut17(tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"wnut17train\.conll: no such file"):
        load_wnut17(tmp_path)


def test_every_published_result_cites_an_entry_of_the_bibliography():
    bibliography = (ROOT / "book" / "references.bib").read_text(encoding="utf-8")
    keys = set(re.findall(r"^@\w+\{([^,]+),", bibliography, flags=re.M))
    assert WNUT17_PUBLISHED, "no published results"
    for result in WNUT17_PUBLISHED:
        assert result.citation in keys, result
        assert 0 < result.entity_f1 < 100
        assert result.surface_f1 is None or 0 < result.surface_f1 < 100
