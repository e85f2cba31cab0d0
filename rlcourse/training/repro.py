"""The reproducibility check: train the same configuration twice with the same seed and compare the evaluations.

On one machine, with the same versions and thread count, stable-baselines3 on the CPU is deterministic: the two
evaluation reports should agree episode by episode. The check states its tolerance (``atol`` on every float metric,
exact equality on success, length and time-to-success) and reports the largest difference it saw, so a failure says
*where* the runs diverged. Across machines or on a GPU, bitwise equality is not expected; that is what a tolerance
and several seeds are for.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from rlcourse.contract.config import TrainConfig
from rlcourse.training.train import train

def compare_reports(a: dict[str, Any], b: dict[str, Any], atol: float = 1e-6) -> dict[str, Any]:
    """Compare two eval.json documents episode by episode, on every field either episode records: floats within
    ``atol``, everything else (seed, length, success, time to success, labels) exactly; a field one side lacks is a
    mismatch. Returns ``{"equal", "atol", "max_abs_diff", "mismatches"}``."""
    mismatches: list[str] = []
    max_diff = 0.0
    if len(a["episodes"]) != len(b["episodes"]):
        mismatches.append(f"episode count {len(a['episodes'])} != {len(b['episodes'])}")
    for i, (ea, eb) in enumerate(zip(a["episodes"], b["episodes"])):
        for k in sorted(set(ea) | set(eb)):
            if k not in ea or k not in eb:
                mismatches.append(f"episode {i} {k}: recorded by one report only")
            elif isinstance(ea[k], float) or isinstance(eb[k], float):
                d = abs(float(ea[k]) - float(eb[k]))
                max_diff = max(max_diff, d)
                if not d <= atol:  # (a NaN on either side is a mismatch too)
                    mismatches.append(f"episode {i} {k}: |{ea[k]} - {eb[k]}| = {d:.3g} > {atol:g}")
            elif ea[k] != eb[k]:
                mismatches.append(f"episode {i} {k}: {ea[k]!r} != {eb[k]!r}")
    return {"equal": not mismatches, "atol": atol, "max_abs_diff": max_diff, "mismatches": mismatches}


def repro_check(cfg: TrainConfig, n_episodes: int = 10, atol: float = 1e-6, workdir: str | Path | None = None) -> dict[str, Any]:
    """Train ``cfg`` twice (same seed) into a scratch folder, evaluate both, and compare the reports.

    Returns the comparison plus each run's aggregate and wall-clock time.
    """
    with tempfile.TemporaryDirectory(prefix="rlcourse-repro-", dir=workdir) as tmp:
        runs = []
        for name in ("a", "b"):
            c = dataclasses.replace(cfg, out_dir=str(Path(tmp) / name), final_eval_episodes=n_episodes,
                                    overwrite=True, tensorboard=False)
            runs.append(train(c))
        result = compare_reports(runs[0].eval, runs[1].eval, atol=atol)
        result.update({
            "algo": cfg.algo, "env_id": cfg.env_id, "seed": cfg.seed, "total_steps": cfg.total_steps,
            "n_episodes": n_episodes,
            "runs": [{"aggregate": r.eval["aggregate"], "wall_clock_s": r.meta["wall_clock_s"],
                      "model_sha256": r.meta["model"]["sha256"]} for r in runs],
        })
    return result


def write_repro(path: str | Path, result: dict[str, Any], command: str) -> Path:
    """Write a :func:`repro_check` result as a ``repro`` JSON document (schema-checked, atomic), with the machine,
    the versions, the git commit and ``command``, the command that recreates it."""
    from rlcourse.contract.runs import write_json
    from rlcourse.core.provenance import git_info, hardware, utc_now, versions

    doc = {"schema": "rlcourse.repro/1", "created_utc": utc_now(), "command": command, "hardware": hardware(),
           "versions": versions(), "git": git_info(), **result}
    return write_json(path, doc, "repro")
