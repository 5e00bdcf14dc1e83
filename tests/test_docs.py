"""The README stays a page a newcomer reads: one short line per command, the detail in docs/, every link alive,
and the two set-up commands that CI runs."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_link_of_the_readme_and_the_docs_exists():
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links to a missing {target}"


def test_the_command_table_has_one_short_line_per_command():
    rows = [ln for ln in README.splitlines() if ln.startswith("| `xling ")]
    assert len(rows) >= 10
    for row in rows:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]]
        assert len(cells) == 3 and (cells[2].startswith("[docs/") or cells[2] == "this page"), row
        assert all(len(c) <= 300 for c in cells), f"a cell over 300 characters: {row[:80]}..."


def test_the_readme_keeps_the_two_setup_commands_that_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert "bash install.sh && python3 -m pytest -q tests" in README and ci.endswith("bash install.sh && python3 -m pytest -q tests")
    assert "bash install.sh && xling demo --out demo --xglue ../shared/data/xglue-real" in README
