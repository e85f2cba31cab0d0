"""The browser check of the built book (scripts/check_book.py), on hand-made pages: what it must refuse."""

import importlib.util
import shutil

import pytest

from rlcourse.core.paths import project_root

spec = importlib.util.spec_from_file_location("check_book", project_root() / "scripts" / "check_book.py")
check_book = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_book)


def _page(root, body):
    (root / "_static").mkdir(parents=True, exist_ok=True)
    (root / "_static" / "local.js").write_text("")
    page = root / "p.html"
    page.write_text(f"<html><head>{body}</head><body>text</body></html>")
    return page


@pytest.mark.parametrize("body,problem", [
    ('<script src="_static/local.js"></script>', None),
    ('<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script>', "from the network"),
    ('<img src="_images/missing.png">', "does not exist"),
    ('<link rel="stylesheet" href="//fonts.example.org/a.css">', "from the network"),
    ('<link rel="next" href="https://example.org/next">', None),  # navigation, not a resource
])
def test_resources_come_from_the_build_folder(tmp_path, body, problem):
    found = check_book.external_or_missing(_page(tmp_path, body), tmp_path)
    assert (found == []) if problem is None else (len(found) == 1 and problem in found[0])


def test_raw_or_untypeset_maths_is_reported(tmp_path):
    page = _page(tmp_path, "")
    page.write_text('<p><span class="math notranslate">\\(x\\)</span></p>')
    raw = check_book.maths_problems(page, tmp_path, "<p>\\(x\\)</p>")
    assert any("raw \\(" in p for p in raw) and any("nothing was typeset" in p for p in raw)
    typeset = check_book.maths_problems(page, tmp_path, "<p><mjx-container>x</mjx-container></p><pre>\\(</pre>")
    assert typeset == []


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (scripts/sysdeps.sh)")
def test_chromium_typesets_a_page_offline_with_the_bundled_mathjax(tmp_path):
    import importlib.resources

    bundle = importlib.resources.files("sphinx-mathjax-offline") / "static" / "mathjax"
    shutil.copytree(str(bundle), tmp_path / "_static" / "mathjax")
    page = tmp_path / "m.html"
    page.write_text('<html><head><script defer src="_static/mathjax/tex-chtml.js"></script></head>'
                    '<body><p><span class="math notranslate">\\(\\gamma = 0.95\\)</span></p></body></html>')
    dom = check_book.rendered_text(page, shutil.which("chromium"))
    assert check_book.maths_problems(page, tmp_path, dom) == [] and "<mjx-container" in dom
    (page.parent / "_static" / "mathjax" / "tex-chtml.js").unlink()  # MathJax removed: the check must fail
    assert check_book.maths_problems(page, tmp_path, check_book.rendered_text(page, shutil.which("chromium")))


def test_a_numpy_repr_pasted_by_glue_is_reported(tmp_path):
    page = tmp_path / "p.html"
    page.write_text('<p>and <span class="pasted-text">np.int64(1)</span> of <span class="pasted-text">3</span></p>')
    problems = check_book.pasted_reprs(page, tmp_path)
    assert len(problems) == 1 and "np.int64(1)" in problems[0]
    page.write_text('<p><span class="pasted-text">0.97</span> and <span class="pasted-text">140,000</span></p>')
    assert check_book.pasted_reprs(page, tmp_path) == []
