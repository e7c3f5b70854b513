"""The results pages and the README say what the JSON under results/ says: every table block
renders from its JSON, every JSON is shown somewhere, and no page names an internal milestone or a
path that a clone lacks."""

import importlib.util
import json
import re

import pytest

from conftest import REPO

spec = importlib.util.spec_from_file_location("render", REPO / "docs" / "render.py")
render = importlib.util.module_from_spec(spec)
spec.loader.exec_module(render)


@pytest.mark.parametrize("page", render.PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_table_of_a_page_is_what_its_json_renders_to(page):
    text = page.read_text()
    assert render.render(text) == text, f"{page.name}: a table differs from its JSON; run python docs/render.py"


def test_every_json_under_results_is_shown_and_every_block_names_one():
    shown = set()
    for page in render.PAGES:
        for match in render.BLOCK.finditer(page.read_text()):
            assert match.group(2) in render.VIEWS, (page.name, match.group(2))
            shown |= {ref.partition("#")[0] for ref in match.group(3).split()}
    on_disk = {f"results/{p.name}" for p in (REPO / "results").glob("*.json")}
    assert on_disk and on_disk == shown, on_disk ^ shown
    for path in on_disk:
        json.loads((REPO / path).read_text())


def test_a_changed_figure_makes_its_page_stale(tmp_path, monkeypatch):
    page = tmp_path / "page.md"
    table = {"tables": {"t": {"columns": ["a", "b"], "rows": [["x", "1.0%"]]}}}
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "t.json").write_text(json.dumps(table))
    monkeypatch.setattr(render, "REPO", tmp_path)
    page.write_text("# t\n<!-- table rows results/t.json#t -->\n<!-- end table -->\n")
    page.write_text(render.render(page.read_text()))
    assert "| x | 1.0% |" in page.read_text() and not render.stale([page])
    table["tables"]["t"]["rows"][0][1] = "2.0%"
    (tmp_path / "results" / "t.json").write_text(json.dumps(table))
    assert render.stale([page]) == [str(page.relative_to(tmp_path))]


def test_the_readme_is_a_user_guide():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    for text in [readme] + [p.read_text() for p in (REPO / "docs").rglob("*.md")]:
        assert not re.search(r"stop [0-9]+|issue [0-9]+|runs/s[0-9]+", text)
    for target in re.findall(r"\]\(((?!http)[^)#]+)", readme):  # every link a clone can follow
        assert (REPO / target).exists(), target
