"""Chapters, profiles, the table of contents and how notebooks are committed."""

import json

import pytest
import yaml

from rlcourse import chapters
from rlcourse.core.errors import RLCourseError
from rlcourse.notebooks import outputs_present, parameter_names, run_chapter
from rlcourse.core.paths import project_root

ROOT = project_root()
WRITTEN = [c for c in chapters.CHAPTERS.values() if c.written]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_registry_covers_the_syllabus():
    assert list(chapters.CHAPTERS) == [f"ch{i:02d}" for i in range(11)]
    assert {c.id for c in WRITTEN} >= {"ch00", "ch01"}


@pytest.mark.parametrize("ch", WRITTEN, ids=lambda c: c.id)
def test_written_chapters_have_both_profiles_and_a_quick_default(ch):
    assert set(ch.profiles) == set(chapters.PROFILES)
    nb = ch.notebook_path()
    assert nb.is_file()
    assert "profile" in parameter_names(nb)
    src = next("".join(c["source"]) for c in json.loads(nb.read_text())["cells"]
               if "parameters" in c.get("metadata", {}).get("tags", []))
    assert 'profile = "quick"' in src


def test_every_notebook_is_registered_and_in_the_toc():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = {c["file"] for part in toc["parts"] for c in part["chapters"]}
    registered = {f"notebooks/{c.notebook.removesuffix('.ipynb')}" for c in WRITTEN}
    on_disk = {f"notebooks/{p.stem}" for p in NOTEBOOKS}
    assert on_disk == registered
    assert registered <= files
    for f in files:  # and every toc entry exists
        assert (ROOT / f"{f}.md").is_file() or (ROOT / f"{f}.ipynb").is_file(), f


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebooks_have_no_outputs(nb):
    assert not outputs_present(nb), f"{nb.name} carries outputs: clear them before committing"
    meta = json.loads(nb.read_text())["metadata"]
    assert meta["kernelspec"]["name"] == "python3"


def test_settings_are_copies_and_errors_are_clear():
    s = chapters.settings("ch00", "quick")
    s["total_steps"] = -1
    assert chapters.settings("ch00", "quick")["total_steps"] > 0
    with pytest.raises(RLCourseError, match="unknown profile"):
        chapters.settings("ch00", "fast")
    planned = [c.id for c in chapters.CHAPTERS.values() if not c.written]
    for chapter_id in planned[:1]:  # none once every chapter is written
        with pytest.raises(RLCourseError, match="not written"):
            chapters.settings(chapter_id, "quick")
    with pytest.raises(RLCourseError, match="unknown chapter"):
        run_chapter("ch42")


IN_PROGRESS: set[str] = set()  # chapters whose page is published before their reference runs


def test_syllabus_marks_exactly_the_written_chapters():
    """The syllabus page links every written chapter and marks the rest planned (no page, no link); a chapter whose
    page is published before its reference runs is marked "in progress"."""
    rows = {}
    for line in (ROOT / "book" / "syllabus.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].isdigit():
            rows[int(cells[0])] = cells
    assert sorted(rows) == list(range(11))
    for c in chapters.CHAPTERS.values():
        title, status = rows[int(c.week)][1:3]
        if c.written:
            assert status == ("in progress" if c.id in IN_PROGRESS else "written"), c.id
            assert f"../notebooks/{c.notebook.removesuffix('.ipynb')}" in title, c.id
        else:
            assert status == "planned" and "{doc}" not in title, c.id


def test_the_full_profile_is_the_quick_one_plus_stated_changes():
    for ch in WRITTEN:
        quick, full = ch.profiles["quick"], ch.profiles["full"]
        assert quick == ch.quick
        for key, value in quick.items():  # anything the full profile does not change is the quick value
            if key not in ch.full:
                assert full[key] == value, (ch.id, key)


def test_a_change_of_type_in_a_profile_is_refused():
    base = {"total_steps": 1000, "ppo": {"n_steps": 64}, "seeds": [0]}
    assert chapters.merge_profile(base, {"ppo": {"n_steps": 1024}})["ppo"] == {"n_steps": 1024}
    assert chapters.merge_profile(base, {"total_steps": 2e5})["total_steps"] == 2e5  # ints and floats are numbers
    for bad in ({"total_steps": "lots"}, {"ppo": {"n_steps": [64]}}, {"seeds": 0}):
        with pytest.raises(TypeError, match="profile setting"):
            chapters.merge_profile(base, bad)
