"""The book build is the one execution of the notebooks in `make test`: a cell that raises must fail it."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rlcourse.core.paths import project_root


@pytest.mark.slow
@pytest.mark.parametrize("fails", [True, False])
def test_a_failing_cell_fails_the_book_build(tmp_path, fails):
    import nbformat

    config = yaml.safe_load((project_root() / "_config.yml").read_text())  # the course's own execution settings
    (tmp_path / "_config.yml").write_text(yaml.safe_dump({"title": "t", "execute": config["execute"]}))
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n- file: nb\n")
    (tmp_path / "intro.md").write_text("# Intro\n")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A chapter"),
                nbformat.v4.new_code_cell(f"x = 1\nassert x == {2 if fails else 1}, 'a check in the chapter fails'")]
    nbformat.write(nb, tmp_path / "nb.ipynb")
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run([str(jb), "build", str(tmp_path), "--warningiserror", "--keep-going", "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert (proc.returncode != 0) is fails, proc.stdout[-2000:] + proc.stderr[-2000:]
    if fails:
        assert "Executing notebook failed" in proc.stdout + proc.stderr
