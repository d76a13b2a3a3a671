"""Another revision of the project, checked out beside this one, for a benchmark's baseline side."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".runwatch"


def tree_at(rev):
    """The files of git revision `rev` in .runwatch/bench-baseline-<short rev> (made once, with git archive)."""
    short = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.strip()
    tree = STATE / f"bench-baseline-{short}"
    if not (tree / "manage.py").exists():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.Popen(["git", "archive", short], cwd=ROOT, stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(tree)], stdin=archive.stdout, check=True)
        if archive.wait():
            sys.exit(f"git archive {short} failed")
    return tree
