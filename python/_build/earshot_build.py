"""A PEP 517 build backend written with the standard library only.

`pip install ./python` then needs nothing but pip: no setuptools, no wheel,
no network (pyproject.toml's build-system requires nothing, so pip's
isolated build environment has nothing to fetch). The package is one folder
of pure Python; its wheel is that folder plus the metadata the wheel format
asks for (PEP 427, core metadata 2.1), its sdist the tree pip was given.
Name, version and the rest come from pyproject.toml's [project] table.
"""

import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "earshot"


def _project():
    """The [project] table's simple fields (strings and string lists)."""
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        text = f.read()
    table = re.search(r"^\[project\]\n(.*?)(?=^\[)", text, re.S | re.M).group(1)
    fields = {}
    for key, value in re.findall(r'^([a-z-]+)\s*=\s*(".*?"|\[.*?\])\s*$', table, re.M | re.S):
        fields[key] = re.findall(r'"(.*?)"', value) if value.startswith("[") else value[1:-1]
    extras = re.search(r"^\[project\.optional-dependencies\]\n(.*?)(?=^\[|\Z)", text, re.S | re.M)
    fields["extras"] = {}
    if extras:
        for name, deps in re.findall(r"^([a-z0-9_-]+)\s*=\s*\[(.*?)\]", extras.group(1), re.M):
            fields["extras"][name] = re.findall(r'"(.*?)"', deps)
    return fields


def _metadata(p):
    lines = ["Metadata-Version: 2.1", "Name: " + p["name"], "Version: " + p["version"],
             "Summary: " + p.get("description", ""),
             "Requires-Python: " + p.get("requires-python", ">=3")]
    lines += ["Requires-Dist: " + d for d in p.get("dependencies", [])]
    for extra, deps in sorted(p["extras"].items()):
        lines.append("Provides-Extra: " + extra)
        lines += ['Requires-Dist: %s; extra == "%s"' % (d, extra) for d in deps]
    readme = os.path.join(ROOT, p.get("readme", "README.md"))
    body = ""
    if os.path.exists(readme):
        lines.append("Description-Content-Type: text/markdown")
        with open(readme, encoding="utf-8") as f:
            body = "\n" + f.read()
    return "\n".join(lines) + "\n" + body


def _package_files():
    """Every file of the package folder (a libearshot.so* copied there too),
    caches left out."""
    for folder, dirs, files in os.walk(os.path.join(ROOT, PACKAGE)):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if not name.endswith((".pyc", ".pyo")):
                path = os.path.join(folder, name)
                yield path, os.path.relpath(path, ROOT).replace(os.sep, "/")


def _record_line(arcname, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (arcname, digest, len(data))


# ---- PEP 517 hooks -------------------------------------------------------------------


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    p = _project()
    dist_info = "%s-%s.dist-info" % (p["name"], p["version"])
    filename = "%s-%s-py3-none-any.whl" % (p["name"], p["version"])
    record = []
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w", zipfile.ZIP_DEFLATED) as whl:
        def add(arcname, data):
            whl.writestr(arcname, data)
            record.append(_record_line(arcname, data))

        for path, arcname in _package_files():
            with open(path, "rb") as f:
                add(arcname, f.read())
        add(dist_info + "/METADATA", _metadata(p).encode())
        add(dist_info + "/WHEEL", b"Wheel-Version: 1.0\nGenerator: earshot_build\n"
                                  b"Root-Is-Purelib: true\nTag: py3-none-any\n")
        record.append(dist_info + "/RECORD,,")
        whl.writestr(dist_info + "/RECORD", "\n".join(record) + "\n")
    return filename


def build_sdist(sdist_directory, config_settings=None):
    p = _project()
    base = "%s-%s" % (p["name"], p["version"])
    filename = base + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz") as tar:
        for name in ("pyproject.toml", "README.md", "_build/earshot_build.py"):
            tar.add(os.path.join(ROOT, name), arcname=base + "/" + name)
        for path, arcname in _package_files():
            tar.add(path, arcname=base + "/" + arcname)
        info = tarfile.TarInfo(base + "/PKG-INFO")
        data = _metadata(p).encode()
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return filename
