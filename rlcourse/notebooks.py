"""Running chapter notebooks headless (papermill) and checking how they are committed."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

from rlcourse.chapters import check_profile, get
from rlcourse.core.errors import RLCourseError
from rlcourse.core.io import check_writable_file
from rlcourse.core.paths import project_root


class ChapterFailed(RLCourseError):
    """A chapter notebook raised while executing (not a usage error: exit code 1)."""

    exit_code = 1


def parameter_names(notebook: Path) -> set[str]:
    """Names assigned in the cell tagged ``parameters`` (what papermill may override)."""
    nb = json.loads(Path(notebook).read_text())
    for cell in nb["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            tree = ast.parse("".join(cell["source"]))
            return {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
                    if isinstance(t, ast.Name)}
    raise RLCourseError(f"{notebook} has no cell tagged 'parameters'")


def outputs_present(notebook: Path) -> bool:
    """True if any code cell of the notebook carries outputs or an execution count."""
    nb = json.loads(Path(notebook).read_text())
    return any(c.get("outputs") or c.get("execution_count") for c in nb["cells"] if c["cell_type"] == "code")


def run_chapter(chapter_id: str, profile: str = "quick", out: str | Path | None = None,
                extra: dict[str, Any] | None = None, progress: bool = True) -> Path:
    """Execute a chapter with papermill in ``profile`` and return the executed copy's path.

    The kernel starts in ``notebooks/`` (as in JupyterLab). The executed notebook is written to a temporary name
    and renamed when the run succeeds; a failed run is kept as ``*.FAILED.ipynb`` for inspection.
    """
    import papermill as pm

    ch = get(chapter_id)
    check_profile(profile)
    nb = ch.notebook_path()
    if "profile" in (extra or {}):
        raise RLCourseError("set the profile with --profile (quick or full), not as a parameter")
    params = {"profile": profile, **(extra or {})}
    unknown = set(params) - parameter_names(nb)
    if unknown:
        raise RLCourseError(f"{chapter_id} has no parameter(s) {sorted(unknown)}; "
                            f"its parameters are {sorted(parameter_names(nb))}")
    out = Path(out) if out else project_root() / "_build" / "executed" / f"{nb.stem}.{profile}.ipynb"
    check_writable_file(out, what="executed notebook")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.running.ipynb")
    try:
        pm.execute_notebook(str(nb), str(tmp), parameters=params, cwd=str(nb.parent), progress_bar=progress,
                            kernel_name="python3")
    except pm.PapermillExecutionError as exc:
        failed = out.with_name(f"{out.stem}.FAILED.ipynb")
        tmp.replace(failed)
        raise ChapterFailed(f"{chapter_id} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue} "
                            f"(executed copy: {failed})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(out)
    return out
