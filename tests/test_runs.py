import json
import math

import pytest

from rlcourse.core.errors import RLCourseError
from rlcourse.contract.runs import (check_run_id, curve_table, list_runs, load_run, read_json, sha256, validate,
                           write_json)


def test_write_json_is_strict_and_atomic(tmp_path):
    p = tmp_path / "a.json"
    write_json(p, {"x": 1.5, "y": [1, 2]})
    assert json.loads(p.read_text()) == {"x": 1.5, "y": [1, 2]}
    with pytest.raises(ValueError, match="non-finite"):
        write_json(p, {"x": math.nan})
    with pytest.raises(ValueError, match="non-finite"):
        write_json(tmp_path / "b.json", {"nested": [{"v": math.inf}]})
    # the failed writes left the old file intact and no temporary files behind
    assert json.loads(p.read_text()) == {"x": 1.5, "y": [1, 2]}
    assert sorted(f.name for f in tmp_path.iterdir()) == ["a.json"]


def test_schema_rejects_before_writing(tmp_path):
    bad = {"schema": "rlcourse.curve/1", "run_id": "r", "columns": ["a"]}  # rows missing
    with pytest.raises(RLCourseError, match="rows"):
        write_json(tmp_path / "curve.json", bad, "curve")
    assert not (tmp_path / "curve.json").exists()


def test_read_json_refuses_nan_and_garbage(tmp_path):
    (tmp_path / "nan.json").write_text('{"x": NaN}')
    with pytest.raises(RLCourseError, match="corrupt JSON"):
        read_json(tmp_path / "nan.json")
    (tmp_path / "cut.json").write_text('{"x": [1, 2')
    with pytest.raises(RLCourseError, match="corrupt JSON"):
        read_json(tmp_path / "cut.json")
    with pytest.raises(RLCourseError, match="missing file"):
        read_json(tmp_path / "absent.json")


def test_tiny_run_validates_against_the_schema(tiny_run):
    for kind in ("meta", "eval", "curve"):
        validate(read_json(tiny_run.path / f"{kind}.json"), kind)
    assert tiny_run.meta["model"]["sha256"] == sha256(tiny_run.model_path)
    table = curve_table(tiny_run.curve)
    assert table["timesteps"] == sorted(table["timesteps"]) and table["timesteps"][-1] == 256


def test_load_run_detects_corruption_and_missing_model(tiny_run, tmp_path):
    import shutil

    copy = tmp_path / tiny_run.path.name
    shutil.copytree(tiny_run.path, copy)
    data = bytearray((copy / "model.zip").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "model.zip").write_bytes(bytes(data))
    with pytest.raises(RLCourseError, match="corrupt"):
        load_run(copy)
    (copy / "model.zip").unlink()
    with pytest.raises(RLCourseError, match="missing"):
        load_run(copy)
    (copy / "meta.json").write_text("{")
    with pytest.raises(RLCourseError, match="corrupt JSON"):
        load_run(copy)


def test_list_runs_skips_partial_folders(tiny_run, tmp_path):
    import shutil

    shutil.copytree(tiny_run.path, tmp_path / "done")
    shutil.copytree(tiny_run.path, tmp_path / "wip.partial")
    assert [r.path.name for r in list_runs(tmp_path)] == ["done"]
    assert list_runs(tmp_path / "nowhere") == []


@pytest.mark.parametrize("bad", ["", "a/b", "..", "x y", "run.partial"])
def test_run_ids_are_safe_folder_names(bad):
    with pytest.raises(RLCourseError):
        check_run_id(bad)
    assert check_run_id("ppo_FetchReach-v4_seed0") == "ppo_FetchReach-v4_seed0"
