"""No result typed into a chapter's prose: scripts/check_prose.py finds the numbers left in the Markdown cells once
maths, code, glue roles and references are removed; each notebook declares, with a reason, the ones that are not
results (the task's definition, a setting read back from the code)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("check_prose", ROOT / "scripts" / "check_prose.py")
check_prose = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_prose)

NOTEBOOKS = sorted((ROOT / "notebooks").glob("ch*.ipynb"))
# Notebooks whose prose is still being moved to glue (none left); the set may only shrink.
PENDING: set[str] = set()


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_typed_numbers_in_prose(nb):
    problems = check_prose.typed_numbers(nb)
    if nb.name in PENDING:
        assert problems, f"{nb.name} is clean now: remove it from PENDING"
    else:
        assert not problems, "\n".join(problems)


def test_the_check_finds_a_typed_result_and_ignores_maths_code_and_glue(tmp_path):
    import json

    cells = ["Success was 0.93 after 50k steps.", "$\\gamma = 0.95$ and `n_steps=2048`; {glue:text}`rate:.2f`.",
             "See chapter 3 and exercise 2 on FetchReach-v4 (Andrychowicz et al., 2017)."]
    nb = {"cells": [{"cell_type": "markdown", "source": [c]} for c in cells],
          "metadata": {"rlcourse": {"prose_numbers": {"50k": "a setting", "7": "gone"}}}}
    path = tmp_path / "ch99.ipynb"
    path.write_text(json.dumps(nb))
    problems = check_prose.typed_numbers(path)
    assert len(problems) == 2 and "'0.93'" in problems[0] and "'7' no longer occurs" in problems[1], problems
