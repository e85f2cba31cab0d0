"""The browser check of the built book: open every page the way a reader without network would, and fail on what
they would see broken.

For each HTML page under ``_build/html`` it checks, in the static files, that no resource (script, stylesheet,
image, font) is fetched from outside the build folder and that every image it embeds exists; then headless
Chromium opens the page with every host name unresolvable (the network blocked), waits for MathJax, and the
rendered page must hold typeset maths where the source has maths and no raw ``\\(``, ``\\[`` or ``$$`` left in its
text (code blocks excepted). A value pasted into the prose by myst-nb's glue must read as a number, not as a
numpy repr such as ``np.int64(1)`` (glue plain Python numbers). Exit 0 when every page passes, 1 with one line per failure otherwise, 0 with a
message when Chromium is not installed (``scripts/sysdeps.sh`` installs it where it can).

    python scripts/check_book.py [_build/html]
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

RESOURCE = re.compile(r'<(script|img|link|source|iframe)\b[^>]*?\b(src|href)="([^"]+)"', re.I)
RAW_MATHS = (r"\(", r"\[", "$$")
PASTED = re.compile(r'<span class="pasted-text">(.*?)</span>', re.S)
NUMPY_REPR = re.compile(r"\b(?:np|numpy)\.[a-z_]+\d*_?\(")


def pasted_reprs(page: Path, root: Path) -> list[str]:
    """Glued values that show a numpy repr in the prose instead of a number."""
    return [f"{page.relative_to(root)}: glued value shows as {html.unescape(m.group(1)).strip()!r}; glue a plain "
            "Python number" for m in PASTED.finditer(page.read_text(errors="replace"))
            if NUMPY_REPR.search(html.unescape(m.group(1)))]


def external_or_missing(page: Path, root: Path) -> list[str]:
    """Resources of ``page`` that come from outside ``root`` or do not exist (links to other sites are fine)."""
    problems = []
    for tag, attr, url in RESOURCE.findall(page.read_text(errors="replace")):
        if tag.lower() == "link" and not re.search(r"\.(css|js|woff2?|ttf|png|svg|ico)(\?|$)", url):
            continue  # <link rel="next" href=...>: navigation, not a resource
        parsed = urlparse(url)
        if parsed.scheme in ("http", "https") or url.startswith("//"):
            problems.append(f"{page.relative_to(root)}: {tag} loads {url} from the network")
        elif parsed.scheme in ("", "file") and not url.startswith(("data:", "#")):
            target = (page.parent / unquote(parsed.path)).resolve()
            if not target.exists():
                problems.append(f"{page.relative_to(root)}: {tag} {url} does not exist in the build")
            elif root.resolve() not in target.parents:
                problems.append(f"{page.relative_to(root)}: {tag} {url} lies outside the build folder")
    return problems


def rendered_text(page: Path, chromium: str) -> str:
    """The page's DOM after scripts ran, with the network blocked."""
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=15000",
             "--dump-dom", page.resolve().as_uri()],
            capture_output=True, text=True, timeout=120)
    return proc.stdout


def maths_problems(page: Path, root: Path, dom: str) -> list[str]:
    source = page.read_text(errors="replace")
    prose = re.sub(r"<(script|style|pre|code)\b[^>]*>.*?</\1>", " ", dom, flags=re.S | re.I)
    typeset = len(re.findall(r"<mjx-container\b", prose))
    prose = re.sub(r"<mjx-container\b.*?</mjx-container>", " ", prose, flags=re.S)
    text = html.unescape(re.sub(r"<[^>]+>", " ", prose))
    problems = [f"{page.relative_to(root)}: raw {d} left in the text: ...{' '.join(text[i - 30:i + 30].split())}..."
                for d in RAW_MATHS for i in [text.find(d)] if i >= 0]
    has_maths = 'class="math' in source or "\\(" in source
    if has_maths and typeset == 0:
        problems.append(f"{page.relative_to(root)}: has maths but nothing was typeset (MathJax did not run)")
    return problems


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else "_build/html")
    pages = sorted(p for p in root.rglob("*.html")
                   if not p.name.startswith(("genindex", "search")) and "_static" not in p.relative_to(root).parts)
    if not pages:
        print(f"check_book: no pages under {root}; build the book first", file=sys.stderr)
        return 1
    problems = [p for page in pages for p in external_or_missing(page, root) + pasted_reprs(page, root)]
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("check_book: chromium is not installed, so the pages were not opened in a browser "
              "(apt-get install chromium); static checks only")
    else:
        for page in pages:
            problems += maths_problems(page, root, rendered_text(page, chromium))
    for line in problems:
        print(f"check_book: {line}", file=sys.stderr)
    print(f"check_book: {len(pages)} pages, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
