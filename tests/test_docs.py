"""The README and docs/ stay true to the code: every setting the code reads is documented, every link and make
target they name exists, and the README and BENCHMARKS.md stay one page each (issue 27)."""

import re

import pytest

from tests.helpers import ROOT

DOCS = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").rglob("*.md"))]
# Where the server, the make targets and the client read their environment. Tests and benchmarks have their own
# knobs, documented where they are used.
CODE = [*ROOT.glob("config/*.py"), *ROOT.glob("engine/*.py"), *ROOT.glob("scripts/*"), ROOT / "runwatch_client.py",
        ROOT / "Makefile",
        *(path for app in ("accounts", "datasets", "experiments", "runs", "results", "live", "sharing")
          for path in ROOT.glob(f"{app}/**/*.py"))]
READS = re.compile(r"""(?:env_bool|env_float|env_list|environ\.get|getenv)\(\s*["']([A-Z][A-Z0-9_]+)["']"""
                   r"""|\$\{([A-Z][A-Z0-9_]+):-""")
# Read from the environment but not settings a person sets: the shell's own, what one script hands the next,
# and pytest-xdist's worker name.
NOT_SETTINGS = {"PATH", "PWD", "DASK_SCHEDULERS", "PYTEST_XDIST_WORKER", "PY"}


def environment_variables():
    found = set()
    for path in CODE:
        if path.is_file():
            for match in READS.finditer(path.read_text(errors="replace")):
                found.add(match.group(1) or match.group(2))
    return found - NOT_SETTINGS


def test_it_finds_the_settings_it_checks():
    # A guard on the pattern itself: were it to match nothing, the next test would pass vacuously.
    assert {"DATABASE_URL", "RUNWATCH_N_JOBS", "RUNWATCH_WS_DB_THREADS", "DASK_WORKERS"} <= environment_variables()


def test_it_documents_every_environment_variable():
    documented = (ROOT / "docs" / "configuration.md").read_text()
    missing = sorted(name for name in environment_variables() if f"`{name}`" not in documented)
    assert missing == [], f"add these to the table in docs/configuration.md: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_it_links_only_to_files_that_exist(doc):
    text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (doc.parent / path) if path else doc
        if not linked.exists() or (anchor and linked.is_file() and anchor not in anchors(linked)):
            broken.append(target)
    assert broken == []


def anchors(doc):
    """The ids GitHub gives a Markdown file's headings: lower case, punctuation dropped, spaces as dashes."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", doc.read_text(), flags=re.S), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_it_names_only_make_targets_that_exist():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z ]*?):", makefile, flags=re.M))
    targets = {t for line in targets for t in line.split()}
    # In code: `make run` in prose, or a line of a shell block; "staff make accounts" is English.
    named = {m for doc in DOCS for m in re.findall(r"(?:`|^)make ([a-z]+)\b", doc.read_text(), flags=re.M)}
    assert named - targets == set()


def test_it_keeps_the_readme_and_the_benchmarks_to_a_page():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 220
    assert len((ROOT / "BENCHMARKS.md").read_text().splitlines()) <= 260
