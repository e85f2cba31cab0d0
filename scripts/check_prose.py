"""The typed-number check: find numbers written by hand into the Markdown prose of the chapter notebooks.

A result in a chapter's prose must come from an artifact (a JSON file in ``checkpoints/`` or ``benchmarks/results/``)
through myst-nb's ``{glue:text}`` role, or be printed by a cell. What is left after removing what cannot be a typed
result is reported:

- removed: fenced code, inline code, LaTeX maths (``$...$``, ``$$...$$``; derivations, not measurements), glue and
  other MyST roles, link targets, identifiers that carry digits (``FetchReach-v4``, ``ch03``, ``net_arch``), list
  and heading numbers, references to chapters, exercises, figures, seeds and checks by number, citation years;
- allowed: the numbers a notebook declares in its metadata, ``metadata["rlcourse"]["prose_numbers"]``, a mapping
  from the exact token to the reason it is not a result (e.g. ``"5": "the task's success threshold, in cm"``).
  A declared token that no longer occurs is reported too, so the list cannot go stale.

    python scripts/check_prose.py [notebooks/*.ipynb]     # exit 1 with one line per typed number
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_STRIP = [
    re.compile(r"```.*?```", re.S),                       # fenced code and directives
    re.compile(r":::.*?\n", re.S),                         # colon-fence directive lines (their bodies are checked)
    re.compile(r"\$\$.*?\$\$", re.S),                      # display maths
    re.compile(r"(?<!\\)\$[^$\n]+?(?<!\\)\$"),             # inline maths
    re.compile(r"\{[\w:-]+\}`[^`]*`"),                     # roles: {glue:text}`x:.2f`, {doc}`...`, {ref}`...`
    re.compile(r"`[^`\n]*`"),                              # inline code
    re.compile(r"\]\([^)]*\)"),                            # link targets
    re.compile(r"<[^>\n]+>"),                              # HTML tags
    re.compile(r"^\s*(#+|\d+\.|[-*])\s", re.M),            # heading marks, list numbers
    re.compile(r"\b[A-Za-z_][\w.-]*\d[\w.-]*"),            # identifiers with digits: FetchPush-v4, ch03, a2
    re.compile(r"\b(?:[Cc]hapters?|[Ee]xercises?|[Ff]igures?|[Cc]hecks?|[Ss]eeds?|[Ss]teps?|[Ww]eeks?|[Pp]arts?|"
               r"[Ss]ections?|[Bb]uild It|[Ll]abs?)\s+\(?\d+[a-z]?\)?(?:\s*(?:,|and|to|–|-)\s*\d+)*"),
    re.compile(r"\((?:[A-Z][\w-]+(?: et al\.)?,? )?(?:19|20)\d\d\)|(?:et al\.,? )(?:19|20)\d\d"),  # citation years
]
NUMBER = re.compile(r"(?<![\w.])[−-]?\d[\d,]*(?:\.\d+)?(?:%|k|M)?(?![\w])")


def prose(source: str) -> str:
    """The text of a Markdown cell with everything that cannot be a typed result removed."""
    for pattern in _STRIP:
        source = pattern.sub(" ", source)
    return source


def typed_numbers(notebook: Path) -> list[str]:
    """One line per number in ``notebook``'s prose that it does not declare, and per declared number it lacks."""
    nb = json.loads(notebook.read_text())
    allowed = nb.get("metadata", {}).get("rlcourse", {}).get("prose_numbers", {})
    problems, seen = [], set()
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        text = prose("".join(cell["source"]))
        for line in text.splitlines():
            for m in NUMBER.finditer(line):
                token = m.group().rstrip(",")
                seen.add(token)
                if token not in allowed:
                    context = " ".join(line[max(0, m.start() - 40): m.end() + 40].split())
                    problems.append(f"{notebook.name} cell {i}: typed number {token!r} in \"...{context}...\"")
    problems += [f"{notebook.name}: declared prose number {t!r} no longer occurs" for t in sorted(set(allowed) - seen)]
    return problems


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted((ROOT / "notebooks").glob("ch*.ipynb"))
    problems = [p for nb in paths for p in typed_numbers(nb)]
    for p in problems:
        print(p)
    print(f"{len(paths)} notebooks, {len(problems)} typed numbers", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
