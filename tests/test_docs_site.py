"""The documentation site (issues 12.2 and 30): ``mkdocs build --strict`` succeeds, every public name of the six
documented subpackages has an entry (an anchor ``concretelab.<module>.<name>``) in its reference page, and a broken
link or anchor fails the strict build. Math is rendered by the KaTeX served with the site (no network).

The site is built once per test module (the ``site`` fixture); the planted-link test builds its own copy."""

from __future__ import annotations

import html
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MODULES = ("distributions", "functional", "objectives", "models", "estimators", "train")

pytest.importorskip("mkdocs")
pytest.importorskip("mkdocstrings")


def _build(config_dir: Path, site: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=config_dir, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built strictly from this checkout."""
    site = tmp_path_factory.mktemp("site")
    built = _build(REPO, site)
    assert built.returncode == 0, built.stderr[-3000:]
    return site


def test_site_builds_strictly_with_an_entry_per_public_name(site: Path) -> None:
    for name in MODULES:
        module = importlib.import_module(f"concretelab.{name}")
        html = (site / "reference" / name / "index.html").read_text(encoding="utf-8")
        anchors = {f"concretelab.{name}.{member}" for member in module.__all__}
        if name == "objectives":  # the function `relaxed` shares its name with its submodule (see the page)
            anchors = (anchors - {"concretelab.objectives.relaxed"}) | {"concretelab.objectives.relaxed.relaxed"}
        missing = sorted(a for a in anchors if f'id="{a}"' not in html)
        assert not missing, f"{name}: no entry for {missing}"
    for page in ("api", "math", "objectives", "estimators", "training", "recipe", "RESULTS"):
        assert (site / page / "index.html").is_file(), page


def test_a_broken_link_or_anchor_fails_the_strict_build(tmp_path: Path) -> None:
    """A copy of the docs with three planted faults: a link to a missing page, to a missing anchor of an existing
    page and to a folder (which has no page). Each must be named by the build, and the build must fail."""
    shutil.copy(REPO / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    (tmp_path / "src").symlink_to(REPO / "src")  # mkdocstrings reads the package from `paths: [src]`
    with (tmp_path / "docs" / "index.md").open("a", encoding="utf-8") as page:
        page.write("\n[planted page](no-such-page.md), [planted anchor](math.md#no-such-anchor),"
                   " [planted folder](figures/no-such-folder/)\n")
    built = _build(tmp_path, tmp_path / "site")
    assert built.returncode != 0, "the strict build passed a broken link"
    warnings = [line for line in built.stderr.splitlines() if line.startswith("WARNING")]  # INFO lines don't fail
    for planted in ("no-such-page.md", "no-such-anchor", "figures/no-such-folder/"):
        assert any(planted in line for line in warnings), f"no warning names {planted!r}:\n{built.stderr[-3000:]}"


MATH_PAGES = ("math", "objectives")
ARITHMATEX = re.compile(r'<(span|div) class="arithmatex">(.*?)</\1>', re.DOTALL)
KATEX_CHECK = """
const katex = require(process.argv[1]);
const formulas = JSON.parse(require("fs").readFileSync(0, "utf8"));
const errors = [];
for (const [tex, display] of formulas) {
  try { katex.renderToString(tex, {displayMode: display, throwOnError: true, strict: "error"}); }
  catch (error) { errors.push(tex + " :: " + error.message); }
}
console.log(JSON.stringify(errors));
"""


def _formulas(page: str) -> list[tuple[str, bool]]:
    """The TeX of every formula pymdownx.arithmatex left in a built page, and whether it is displayed."""
    found = []
    for tag, body in ARITHMATEX.findall(page):
        tex = html.unescape(body).strip()
        found.append((tex[2:-2] if tex[:2] in ("\\(", "\\[") else tex, tag == "div"))
    return found


def test_math_is_rendered_by_the_katex_served_with_the_site(site: Path) -> None:
    katex = site / "assets" / "katex"
    css = (katex / "katex.min.css").read_text(encoding="utf-8")
    fonts = set(re.findall(r"url\((fonts/[^)]+\.woff2)\)", css))
    assert fonts and all((katex / font).is_file() for font in fonts), "KaTeX's WOFF2 fonts are not served"
    for name in MATH_PAGES:
        page = (site / name / "index.html").read_text(encoding="utf-8")
        for asset in ("assets/katex/katex.min.js", "assets/katex-init.js", "assets/katex/katex.min.css"):
            assert f'"../{asset}"' in page, f"{name} does not load {asset} from the site"
        assert not re.search(r'(src|href)="https?://[^"]*katex', page), f"{name} loads KaTeX from the network"
        written = (REPO / "docs" / f"{name}.md").read_text(encoding="utf-8").splitlines().count("$$") // 2
        displayed = sum(display for _, display in _formulas(page))
        assert displayed == written > 0, f"{name}: {displayed} displayed formulas for {written} $$ blocks"
        text = re.sub(r"<(code|pre|script)\b.*?</\1>", "", ARITHMATEX.sub("", page), flags=re.DOTALL)
        assert "$" not in re.sub(r"<[^>]+>", "", text), f"{name}: a $ that was not turned into math"


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run KaTeX")
def test_every_formula_parses_with_katex(site: Path) -> None:
    """KaTeX renders a formula it cannot parse as red source text in the browser; here it must parse."""
    reference = [f for m in MODULES for f in _formulas((site / "reference" / m / "index.html").read_text("utf-8"))]
    formulas = [f for name in MATH_PAGES for f in _formulas((site / name / "index.html").read_text(encoding="utf-8"))]
    formulas += reference
    assert len(reference) >= 20  # the docstrings' formulas are math too (distributions, objectives, estimators)
    checked = subprocess.run(["node", "-e", KATEX_CHECK, str(site / "assets" / "katex" / "katex.min.js")],
                             input=json.dumps(formulas), capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stderr[-3000:]
    assert json.loads(checked.stdout) == []


RAW_ROLE = re.compile(r":(class|func|meth|mod|data|attr|exc|obj):(?=\S)")
RST_RESIDUE = re.compile(r"={5,} +={3,}|\w::\s")  # a simple table's rules, a literal block's "Example::"
# Private names that the docstrings still mention in prose as owners of private helpers (the log_prob docstrings of
# distributions/concrete.py and binary_concrete.py), never as a base class; allowed only in the form `Name._helper`.
PRIVATE_IN_PROSE = {"_ConcreteParams"}


def _public_classes() -> list[tuple[str, type]]:
    found = []
    for name in MODULES:
        module = importlib.import_module(f"concretelab.{name}")
        found += [(name, obj) for member in module.__all__ if isinstance(obj := getattr(module, member), type)]
    return found


def _page_text(site: Path, name: str) -> str:
    page = (site / "reference" / name / "index.html").read_text(encoding="utf-8")
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def test_every_public_class_shows_its_public_methods_inherited_ones_included(site: Path) -> None:
    """Each public member a class has from the package (its own or a base's) has an entry under the class."""
    for name, cls in _public_classes():
        page = (site / "reference" / name / "index.html").read_text(encoding="utf-8")
        members = {member for member in dir(cls) if not member.startswith("_")
                   and next(k for k in cls.__mro__ if member in vars(k)).__module__.startswith("concretelab")}
        missing = sorted(m for m in members if f'id="concretelab.{name}.{cls.__name__}.{m}"' not in page)
        assert not missing, f"{cls.__name__} on the {name} page lacks {missing}"
    page = (site / "reference" / "distributions" / "index.html").read_text(encoding="utf-8")
    for cls in ("Concrete", "ExpConcrete"):
        for method in ("rsample", "sample", "log_prob", "sample_and_log_prob"):
            assert f'id="concretelab.distributions.{cls}.{method}"' in page, f"{cls}.{method}"
    first = [page.index(f'id="concretelab.distributions.{cls}"') for cls in ("Concrete", "ExpConcrete", "BinConcrete")]
    assert first == sorted(first), "Concrete and ExpConcrete come first on the distributions page"


def test_reference_pages_show_no_raw_sphinx_roles_and_no_private_bases(site: Path) -> None:
    public = {obj for _, obj in _public_classes()}
    private_bases = {base.__name__ for cls in public for base in cls.__mro__[1:]
                     if base.__module__.startswith("concretelab") and base not in public}
    assert {"_LogSpaceCategorical", "CategoricalConcreteParams"} <= private_bases  # the check sees them
    for name in MODULES:
        text = _page_text(site, name)
        roles = sorted({text[max(0, m.start() - 40):m.end() + 30] for m in RAW_ROLE.finditer(text)})
        assert not roles, f"raw Sphinx roles on the {name} page: {roles}"
        rst = sorted({text[max(0, m.start() - 40):m.end() + 30] for m in RST_RESIDUE.finditer(text)})
        assert not rst, f"reStructuredText that Markdown shows as text on the {name} page: {rst}"
        for base in sorted(private_bases):
            shown = re.findall(rf"(?<![\w.]){re.escape(base)}\b(?!\._)" if base in PRIVATE_IN_PROSE
                               else rf"(?<![\w.]){re.escape(base)}\b", text)
            assert not shown, f"the private base {base} is named on the {name} page"


def _readme_section(title: str) -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return readme.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_home_page_has_the_readme_quick_start_and_guarantees() -> None:
    """The home page copies the README's "Ten lines" example and its Guarantees table; they must not drift apart."""
    home = (REPO / "docs" / "index.md").read_text(encoding="utf-8")
    ten_lines = re.search(r"```python\n.*?```\n", _readme_section("Ten lines"), re.DOTALL)
    assert ten_lines and ten_lines.group(0) in home, "the home page's quick start is not the README's Ten lines"
    rows = [line for line in _readme_section("Guarantees").splitlines() if line.startswith("|")]
    rows = [re.sub(r"\[docs/([^\]]*)\]\(docs/", r"[\1](", row) for row in rows]  # links from the README into docs/
    assert rows and "\n".join(rows) in home, "the home page's Guarantees table is not the README's"


def test_examples_page_lists_every_example_script_and_its_figures() -> None:
    page = (REPO / "docs" / "examples.md").read_text(encoding="utf-8")
    scripts = sorted(p.name for p in (REPO / "examples").glob("*.py") if '__name__ == "__main__"' in p.read_text())
    assert len(scripts) >= 5
    for script in scripts:
        assert f"python examples/{script} --smoke" in page, f"docs/examples.md has no command for {script}"
    for figure in sorted((REPO / "docs" / "figures" / "examples").iterdir()):
        source = REPO / "examples" / "figures" / figure.name
        assert source.is_file() and source.read_bytes() == figure.read_bytes(), f"{figure.name} differs from examples/"


def test_home_page_links_figure_examples_and_estimators(site: Path) -> None:
    home = (site / "index.html").read_text(encoding="utf-8")
    assert 'src="figures/table1/overview.png"' in home
    assert re.search(r'href="estimators/(#which-estimator)?">Which estimator\?</a>', home)
    assert 'href="examples/"' in home and (site / "examples" / "index.html").is_file()
    assert 'href="https://github.com/concretelab/concretelab"' in home  # repo_url


_NESTED_ITEM = re.compile(r"^ {1,3}(?:[-*+]|\d+\.) ")
_BULLET = re.compile(r"^(?:[-*+]|1\.) ")  # the items CommonMark (GitHub) lets interrupt a paragraph
_UNDER_INDENTED = re.compile(r"^ {1,3}\S")
_NOT_PARAGRAPH = re.compile(r"^(?:\s|#|\||<|!|>|\$\$|(?:[-*+]|\d+\.) )")


def _lists_the_site_would_flatten(text: str) -> list[int]:
    """Line numbers of the lines that GitHub renders inside a list and Python-Markdown (the site's) does not, outside
    code fences and math blocks:
    - an item indented by 1-3 spaces: Python-Markdown nests a list only under 4, so the item joins its parent list;
    - a bullet right after a paragraph line: Python-Markdown starts no list without a blank line, so the item stays
      text in the paragraph;
    - a block indented by 1-3 spaces after a blank line (a second paragraph, a table or a fence meant for the item
      above): Python-Markdown continues an item after a blank line only under 4 spaces, so the block ends the list;
    - a bullet right after an item's second paragraph, table or fence (an indented block after a blank line):
      Python-Markdown reads the bullet as a line of that block."""
    found, fenced, math, previous, in_later_block = [], False, False, "", False
    for number, line in enumerate(text.splitlines(), 1):
        opens_fence = line.lstrip().startswith("```")
        if not (fenced or math):
            after_paragraph = bool(previous.strip()) and not _NOT_PARAGRAPH.match(previous)
            after_blank = not previous.strip() and number > 1
            if (_NESTED_ITEM.match(line) or (_BULLET.match(line) and (after_paragraph or in_later_block))
                    or (after_blank and _UNDER_INDENTED.match(line))):
                found.append(number)
            if not line.strip() or _BULLET.match(line.lstrip()):
                in_later_block = False
            elif after_blank and line.startswith(" "):
                in_later_block = True
        if opens_fence:
            fenced = not fenced
        elif line.strip() == "$$" and not fenced:
            math = not math
        previous = line
    return found


def test_python_markdown_nests_a_list_only_under_four_spaces_and_after_a_blank_line() -> None:
    """The premises of the check below, on the Markdown the site is built with, and the check's own controls."""
    markdown = pytest.importorskip("markdown")
    two, four = "- parent\n  - child\n", "- parent\n    - child\n"
    assert markdown.markdown(two).count("<ul>") == 1 and markdown.markdown(four).count("<ul>") == 2
    joined, apart = "A paragraph:\n- item\n", "A paragraph:\n\n- item\n"
    assert "<ul>" not in markdown.markdown(joined) and "<ul>" in markdown.markdown(apart)
    assert _lists_the_site_would_flatten(two) == [2] and _lists_the_site_would_flatten(four) == []
    assert _lists_the_site_would_flatten(joined) == [2] and _lists_the_site_would_flatten(apart) == []
    assert _lists_the_site_would_flatten("- one\n- two\n  more of two\n- three\n") == []
    assert _lists_the_site_would_flatten("a sum of\n317. No list\n") == []  # only 1. may interrupt a paragraph
    assert _lists_the_site_would_flatten("```\ntext\n  - in a code block\n```\n$$\na\n+ b\n$$\n") == []
    two_spaces, four_spaces = "- item\n  more\n\n  | a |\n  |---|\n", "- item\n  more\n\n    | a |\n    |---|\n"
    before_table = {text: markdown.markdown(text, extensions=["tables"]).split("<table>")[0]
                    for text in (two_spaces, four_spaces)}
    assert "</ul>" in before_table[two_spaces] and "</ul>" not in before_table[four_spaces]
    assert _lists_the_site_would_flatten(two_spaces) == [4] and _lists_the_site_would_flatten(four_spaces) == []
    assert _lists_the_site_would_flatten("- item:\n\n  ```\n  code\n  ```\n") == [3]
    joined_item, apart_item = "- one\n\n    second paragraph\n- two\n", "- one\n\n    second paragraph\n\n- two\n"
    assert markdown.markdown(joined_item).count("<li>") == 1 and markdown.markdown(apart_item).count("<li>") == 2
    assert _lists_the_site_would_flatten(joined_item) == [4] and _lists_the_site_would_flatten(apart_item) == []
    fence_then_item = "- one:\n\n    ```\n    code\n    ```\n- two\n"
    assert "- two" in markdown.markdown(fence_then_item, extensions=["pymdownx.superfences"])  # not an item
    assert _lists_the_site_would_flatten(fence_then_item) == [6]


def test_no_docs_page_has_a_list_that_the_site_would_flatten() -> None:
    flattened = {str(page.relative_to(REPO)): found for page in sorted((REPO / "docs").rglob("*.md"))
                 if (found := _lists_the_site_would_flatten(page.read_text(encoding="utf-8")))}
    assert not flattened, f"list items the site would not render as a list (lines): {flattened}"
