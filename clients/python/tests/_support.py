"""What the tests share: the source tree on sys.path (so the tests check it, not an installed copy),
the paths of the package and the repository, and the goldens the Swift tests may pass.

Run the tests from anywhere with ``python3 -m unittest discover -s clients/python/tests -v``; set
CONVEYOR_BIN to a ``conveyor`` executable for the end-to-end tests.
"""
import os
import subprocess
import sys
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]          # clients/python
REPOSITORY_ROOT = PACKAGE_ROOT.parents[1]                    # the repository, when the package is in it
IN_REPOSITORY = (REPOSITORY_ROOT / "Package.swift").is_file()

if str(PACKAGE_ROOT) not in sys.path[:1]:
    sys.path.insert(0, str(PACKAGE_ROOT))


def golden(name):
    """A hex string the Swift test computes with the Swift encoder (CONVEYOR_GOLDEN_NAME), or None."""
    return os.environ.get(f"CONVEYOR_GOLDEN_{name}")


GOLDEN_SKIP = ("the Swift encoder's bytes are passed in CONVEYOR_GOLDEN_* by the Swift test "
               "(swift test --filter PythonPackageTests); without them only the documented bytes are checked")


def source_environment(**extra):
    """The environment for a child Python that must import this source tree."""
    environment = dict(os.environ, PYTHONUNBUFFERED="1", **extra)
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(PACKAGE_ROOT)] + [p for p in environment.get("PYTHONPATH", "").split(os.pathsep) if p])
    return environment


def run_python(arguments, timeout=120, **kwargs):
    """Runs ``sys.executable arguments`` and returns the CompletedProcess (output as text, merged)."""
    return subprocess.run([sys.executable] + list(arguments), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=timeout, **kwargs)
