"""The package as it ships: the in-tree build backend's wheel and sdist are well formed, and
``pip install --no-index`` puts the package, with no index reachable, into a fresh virtual
environment, where it imports from outside the source tree and its command runs."""
import base64
import csv
import email.parser
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import unittest
import zipfile
from pathlib import Path

import _support
from _support import PACKAGE_ROOT

import conveyor_client
from conveyor_client.client import zmq

VERSION = conveyor_client.__version__
BASE = f"conveyor_client-{VERSION}"
MODULES = sorted(f"conveyor_client/{p.name}" for p in (PACKAGE_ROOT / "conveyor_client").iterdir()
                 if p.is_file() and not p.name.endswith(".pyc"))


def build(hook, directory, source=PACKAGE_ROOT):
    """Runs a hook of the backend in ``source`` in a child Python (as a frontend would) and returns the
    path of what it wrote."""
    code = ("import sys; sys.path.insert(0, '_build'); import conveyor_build; "
            f"print(conveyor_build.{hook}(sys.argv[1]))")
    run = _support.run_python(["-c", code, str(directory)], cwd=str(source), timeout=60)
    if run.returncode != 0:
        raise AssertionError(f"{hook} failed:\n{run.stdout}")
    return Path(directory) / run.stdout.strip().splitlines()[-1]


class BuildTests(unittest.TestCase):
    def setUp(self):
        temporary = tempfile.TemporaryDirectory(prefix="conveyor-client-build-")
        self.addCleanup(temporary.cleanup)
        self.directory = Path(temporary.name)

    def test_the_wheel_has_the_package_and_a_correct_record(self):
        wheel = build("build_wheel", self.directory)
        self.assertEqual(wheel.name, f"{BASE}-py3-none-any.whl")
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
            files = {name: archive.read(name) for name in names}
        info = f"{BASE}.dist-info"
        self.assertEqual(sorted(n for n in names if not n.startswith(info)), MODULES)
        self.assertFalse([n for n in names if "__pycache__" in n or n.endswith(".pyc")])
        record = list(csv.reader(io.StringIO(files[f"{info}/RECORD"].decode())))
        self.assertEqual(sorted(row[0] for row in record), sorted(names), "RECORD lists every file, once")
        for path, digest, size in record:
            if path == f"{info}/RECORD":
                self.assertEqual((digest, size), ("", ""))
                continue
            expected = base64.urlsafe_b64encode(hashlib.sha256(files[path]).digest()).rstrip(b"=").decode()
            self.assertEqual((digest, int(size)), (f"sha256={expected}", len(files[path])), path)
        metadata = email.parser.Parser().parsestr(files[f"{info}/METADATA"].decode())
        self.assertEqual((metadata["Metadata-Version"], metadata["Name"], metadata["Version"]),
                         ("2.1", "conveyor-client", VERSION))
        self.assertEqual(metadata.get_all("Requires-Dist"), ["pyzmq>=17"])
        self.assertEqual(metadata["Requires-Python"], ">=3.8")
        self.assertTrue("pip install ./clients/python" in metadata.get_payload(), "the README is the description")
        wheel_file = email.parser.Parser().parsestr(files[f"{info}/WHEEL"].decode())
        self.assertEqual((wheel_file["Wheel-Version"], wheel_file["Root-Is-Purelib"], wheel_file["Tag"]),
                         ("1.0", "true", "py3-none-any"))
        self.assertEqual(files[f"{info}/entry_points.txt"].decode(),
                         "[console_scripts]\nconveyor-client = conveyor_client.cli:main\n")

    def test_the_sdist_builds_the_same_wheel(self):
        sdist = build("build_sdist", self.directory)
        self.assertEqual(sdist.name, f"{BASE}.tar.gz")
        with tarfile.open(sdist) as archive:
            names = archive.getnames()
            for wanted in ("PKG-INFO", "pyproject.toml", "README.md", "_build/conveyor_build.py",
                           "tests/test_install.py", *MODULES):
                self.assertIn(f"{BASE}/{wanted}", names)
            self.assertTrue(all(n.startswith(f"{BASE}/") for n in names))
            self.assertFalse([n for n in names if "__pycache__" in n or n.endswith(".pyc")])
            unpacked = self.directory / "unpacked"
            archive.extractall(unpacked, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        (self.directory / "a").mkdir()
        (self.directory / "b").mkdir()
        from_tree = build("build_wheel", self.directory / "a")
        from_sdist = build("build_wheel", self.directory / "b", source=unpacked / BASE)
        self.assertEqual(from_tree.read_bytes(), from_sdist.read_bytes(), "a build is reproducible, from either")


@unittest.skipIf(zmq is None, "pyzmq is not installed for this Python: with no index, nothing could satisfy the "
                                "package's dependency on it (pip install pyzmq)")
class OfflineInstallTests(unittest.TestCase):
    """A virtual environment with --system-site-packages (so pyzmq, installed for the system's
    Python, satisfies the dependency with no index), then pip install --no-index."""

    def setUp(self):
        temporary = tempfile.TemporaryDirectory(prefix="conveyor-client-venv-")
        self.addCleanup(temporary.cleanup)
        self.directory = Path(temporary.name)
        # Nothing of the source tree or of an index: only what the venv itself has.
        self.environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("PIP_")}
        self.environment.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONNOUSERSITE="1")
        venv = self.directory / "venv"
        made = subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=180)
        self.assertEqual(made.returncode, 0, "python3 -m venv failed (Debian: apt-get install python3-venv; "
                                             f"scripts/ensure-deps.sh --python does):\n{made.stdout}")
        self.bin = venv / "bin"

    def run_in_venv(self, program, *arguments, timeout=180):
        return subprocess.run([str(self.bin / program)] + list(arguments), cwd=str(self.directory),
                              env=self.environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=timeout)

    def check(self, run, what):
        self.assertEqual(run.returncode, 0, f"{what} failed:\n{run.stdout}")
        return run.stdout

    def test_pip_installs_the_directory_and_the_sdist_offline(self):
        output = self.check(self.run_in_venv("python", "-m", "pip", "install", "--no-index", str(PACKAGE_ROOT)),
                            "pip install --no-index clients/python")
        self.assertIn(f"Successfully installed conveyor-client-{VERSION}", output)
        where = self.check(self.run_in_venv("python", "-c", "import conveyor_client, zmq; "
                                            "print(conveyor_client.__version__, conveyor_client.__file__)"),
                           "importing the installed package")
        version, path = where.split()
        self.assertEqual(version, VERSION)
        venv = os.path.realpath(self.directory / "venv")
        self.assertTrue(os.path.realpath(path).startswith(venv + os.sep), f"imported from {path}, not from the venv")
        self.assertIn(f"conveyor-client {VERSION}", self.check(self.run_in_venv("conveyor-client", "--version"),
                                                               "the conveyor-client script"))
        self.assertIn("ALL OK", self.check(self.run_in_venv("python", "-m", "conveyor_client", "--self-test"),
                                           "python -m conveyor_client --self-test"))
        shown = self.check(self.run_in_venv("python", "-m", "pip", "show", "conveyor-client"), "pip show")
        self.assertIn("Requires: pyzmq", shown)
        self.check(self.run_in_venv("python", "-m", "pip", "check"), "pip check (pyzmq satisfies the dependency)")

        # Uninstalling removes what RECORD lists, the script included; the sdist installs as well.
        self.check(self.run_in_venv("python", "-m", "pip", "uninstall", "-y", "conveyor-client"), "pip uninstall")
        self.assertFalse((self.bin / "conveyor-client").exists(), "the script survived the uninstall")
        sdist = build("build_sdist", self.directory)
        output = self.check(self.run_in_venv("python", "-m", "pip", "install", "--no-index", str(sdist)),
                            "pip install --no-index of the sdist")
        self.assertIn(f"Successfully installed conveyor-client-{VERSION}", output)
        self.assertIn("ALL OK", self.check(self.run_in_venv("conveyor-client", "--self-test"), "the script, from the sdist"))

        # An editable install (PEP 660) imports the source tree itself.
        self.check(self.run_in_venv("python", "-m", "pip", "install", "--no-index", "-e", str(PACKAGE_ROOT)),
                   "pip install --no-index -e clients/python")
        where = self.check(self.run_in_venv("python", "-c", "import conveyor_client; print(conveyor_client.__file__)"),
                           "importing the editable install")
        self.assertEqual(os.path.realpath(where.strip()), os.path.realpath(PACKAGE_ROOT / "conveyor_client" / "__init__.py"))


if __name__ == "__main__":
    unittest.main()
