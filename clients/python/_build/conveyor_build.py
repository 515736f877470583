"""The PEP 517 (and PEP 660) build backend of conveyor-client, in the standard library alone.

pyproject.toml names it with `backend-path = ["_build"]` and `requires = []`, so pip builds the
package without downloading anything: `pip install ./clients/python` works with no index. It reads
[project] and [tool.conveyor-build] from pyproject.toml and writes:

- a wheel: the packages' files, then NAME-VERSION.dist-info/ with METADATA (core metadata 2.1),
  WHEEL, entry_points.txt and RECORD (a sha256 and size for every file);
- an sdist: NAME-VERSION/ holding PKG-INFO and the paths listed in `sdist`;
- an editable wheel: a .pth file that puts this directory on sys.path, and the same dist-info.

Files are stored in sorted order with fixed times (SOURCE_DATE_EPOCH, else 1980-01-01), so a build
is reproducible. Caches (__pycache__, *.pyc) are left out.
"""
import ast
import base64
import gzip
import hashlib
import io
import os
import re
import tarfile
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GENERATOR = "conveyor_build 1"


def _read_toml(path):
    with open(path, "rb") as f:
        data = f.read()
    try:
        import tomllib  # Python 3.11 and later
        return tomllib.loads(data.decode("utf-8"))
    except ImportError:
        return _read_simple_toml(data.decode("utf-8"))


def _read_simple_toml(text):
    """The TOML that pyproject.toml uses, for Pythons without tomllib: [tables], and keys whose
    values are strings, numbers, booleans or arrays of them (an array may span lines)."""
    tables, table, pending = {}, None, ""
    for raw in text.splitlines():
        line = re.sub(r"""("(?:[^"\\]|\\.)*"|'[^']*')|#.*""", lambda m: m.group(1) or "", raw).strip()
        if not line and not pending:
            continue
        if not pending and line.startswith("["):
            table = tables
            for part in line.strip("[]").split("."):
                table = table.setdefault(part.strip().strip('"'), {})
            continue
        pending += " " + line
        key, _, value = pending.partition("=")
        if value.count("[") > value.count("]"):
            continue  # an array going on on the next line
        value = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", value.strip()))
        table[key.strip().strip('"')] = ast.literal_eval(value)
        pending = ""
    return tables


def _config():
    pyproject = _read_toml(os.path.join(ROOT, "pyproject.toml"))
    project, tool = pyproject["project"], pyproject.get("tool", {}).get("conveyor-build", {})
    name = re.sub(r"[-_.]+", "_", project["name"]).lower()  # the name in file names (PEP 427, 625)
    return project, tool, name, f"{name}-{project['version']}"


def _metadata(project):
    lines = ["Metadata-Version: 2.1", f"Name: {project['name']}", f"Version: {project['version']}"]
    if "description" in project:
        lines.append(f"Summary: {project['description']}")
    if project.get("keywords"):
        lines.append(f"Keywords: {','.join(project['keywords'])}")
    lines += [f"Classifier: {c}" for c in project.get("classifiers", [])]
    if "requires-python" in project:
        lines.append(f"Requires-Python: {project['requires-python']}")
    lines += [f"Requires-Dist: {d}" for d in project.get("dependencies", [])]
    body = ""
    if "readme" in project:
        lines.append("Description-Content-Type: text/markdown")
        with open(os.path.join(ROOT, project["readme"]), encoding="utf-8") as f:
            body = f.read()
    return ("\n".join(lines) + "\n\n" + body).encode("utf-8")


def _dist_info(project):
    """The files of the dist-info directory but RECORD, as {name: bytes}."""
    files = {"METADATA": _metadata(project),
             "WHEEL": (f"Wheel-Version: 1.0\nGenerator: {GENERATOR}\nRoot-Is-Purelib: true\n"
                       "Tag: py3-none-any\n").encode()}
    scripts = project.get("scripts", {})
    if scripts:
        entries = "".join(f"{name} = {target}\n" for name, target in sorted(scripts.items()))
        files["entry_points.txt"] = f"[console_scripts]\n{entries}".encode()
    return files


def _tree(relative):
    """The files under ROOT/relative (or that file), as sorted paths relative to ROOT."""
    top = os.path.join(ROOT, relative)
    if os.path.isfile(top):
        return [relative]
    found = []
    for directory, subdirectories, names in os.walk(top):
        subdirectories[:] = [d for d in subdirectories if d != "__pycache__"]
        found += [os.path.relpath(os.path.join(directory, n), ROOT) for n in names if not n.endswith(".pyc")]
    return sorted(p.replace(os.sep, "/") for p in found)


def _epoch():
    return max(int(os.environ.get("SOURCE_DATE_EPOCH", "315532800")), 315532800)


def _write_wheel(directory, contents):
    """A wheel of ``contents`` ({path in the wheel: bytes}, dist-info last, RECORD made here)."""
    project, _, name, base = _config()
    info = f"{base}.dist-info"
    for file, data in _dist_info(project).items():
        contents[f"{info}/{file}"] = data
    record = []
    for path, data in contents.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    contents[f"{info}/RECORD"] = ("\n".join(record + [f"{info}/RECORD,,"]) + "\n").encode()
    filename = f"{base}-py3-none-any.whl"
    stamp = time.gmtime(_epoch())[:6]
    with zipfile.ZipFile(os.path.join(directory, filename), "w", zipfile.ZIP_DEFLATED) as wheel:
        for path, data in contents.items():
            entry = zipfile.ZipInfo(path, stamp)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            wheel.writestr(entry, data)
    return filename


def _read(path):
    with open(os.path.join(ROOT, path), "rb") as f:
        return f.read()


# --- The hooks (PEP 517, PEP 660) ---------------------------------------------------------------

def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    project, _, _, base = _config()
    info = os.path.join(metadata_directory, f"{base}.dist-info")
    os.makedirs(info, exist_ok=True)
    for file, data in _dist_info(project).items():
        with open(os.path.join(info, file), "wb") as f:
            f.write(data)
    return os.path.basename(info)


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _, tool, _, _ = _config()
    paths = [p for package in tool.get("packages", []) for p in _tree(package)]
    return _write_wheel(wheel_directory, {p: _read(p) for p in paths})


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    _, _, name, _ = _config()
    return _write_wheel(wheel_directory, {f"__editable__.{name}.pth": (ROOT + "\n").encode()})


def build_sdist(sdist_directory, config_settings=None):
    project, tool, _, base = _config()
    filename = f"{base}.tar.gz"
    contents = {"PKG-INFO": _metadata(project)}
    for listed in tool.get("sdist", ["pyproject.toml"]):
        contents.update((p, _read(p)) for p in _tree(listed))
    with gzip.GzipFile(os.path.join(sdist_directory, filename), "wb", mtime=_epoch()) as packed, \
            tarfile.open(fileobj=packed, mode="w", format=tarfile.PAX_FORMAT) as sdist:
        for path in sorted(contents):
            entry = tarfile.TarInfo(f"{base}/{path}")
            entry.size, entry.mtime, entry.mode = len(contents[path]), _epoch(), 0o644
            sdist.addfile(entry, io.BytesIO(contents[path]))
    return filename
