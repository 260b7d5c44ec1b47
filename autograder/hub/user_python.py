"""The kit's Python for the users' servers, where every account can run it.

The users' servers, kernels and formgrader run as their own accounts, so the interpreter and the kit's
venv must be readable by them. A venv made from an interpreter in a closed folder (pyenv under /root,
0700) is not. Then this copies that interpreter (binary, libpython, standard library: the same exact
version, so the pinned packages behave the same; Debian's 3.11.2, for one, breaks soupsieve 4.1.3)
to ``<venv>/hub-python-base``, points its library path at the copy (patchelf), and makes
``<venv>/hub-python``, a venv of the copy whose site-packages, etc/ and share/ *are* the kit's
(symlinks: the same installed packages and Jupyter extensions; the sandbox binds the real folders),
with the kit's commands (``jupyter``, ``nbgrader``, ...) pointing at it.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

BIN = Path(sys.executable).parent
VERSION = f"python{sys.version_info.major}.{sys.version_info.minor}"


def reachable(path: Path) -> bool:
    """Can any account run this file (every folder on its real path searchable by others)?"""
    real = Path(os.path.realpath(path))
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in real.parents) and bool(os.stat(real).st_mode & stat.S_IXOTH)


def _copy_interpreter(target: Path) -> Path:
    """The running interpreter's installation (without its own site-packages and tests) in ``target``."""
    base = Path(sys.base_prefix)
    binary = Path(os.path.realpath(sys.executable))
    if (target / "bin" / VERSION).exists():
        return target / "bin" / VERSION
    shutil.copytree(
        base / "lib" / VERSION,
        target / "lib" / VERSION,
        symlinks=True,
        ignore=shutil.ignore_patterns("site-packages", "test", "__pycache__"),
    )
    (target / "lib" / VERSION / "site-packages").mkdir()
    for library in (base / "lib").glob("libpython*.so*"):
        shutil.copy2(library, target / "lib", follow_symlinks=False)
    (target / "bin").mkdir(parents=True)
    shutil.copy2(binary, target / "bin" / VERSION)
    copy = target / "bin" / VERSION
    runpath = subprocess.run(["patchelf", "--print-rpath", str(copy)], capture_output=True, text=True).stdout.strip()
    if runpath:  # libpython from the copy, not from the closed folder
        subprocess.run(["patchelf", "--set-rpath", "$ORIGIN/../lib", str(copy)], check=True)
    for folder in [target, *(p for p in target.rglob("*") if p.is_dir())]:
        folder.chmod(0o755)
    return copy


def users_bin(venv_root: Path) -> Path:
    """The bin folder the users' servers run from: the kit's own if every account can run it, else a copy's."""
    if reachable(Path(sys.executable)):
        return BIN
    if shutil.which("patchelf") is None:
        raise RuntimeError(
            f"{sys.executable} is in a folder other accounts cannot enter: install patchelf "
            "(apt-get install patchelf) to let the hub copy it, or make the kit's venv from a Python "
            "every account can run"
        )
    python = _copy_interpreter(venv_root / "hub-python-base")
    target = venv_root / "hub-python"
    if not (target / "pyvenv.cfg").exists():
        subprocess.run([str(python), "-m", "venv", "--without-pip", str(target)], check=True)
    for link, real in (
        (target / "lib" / VERSION / "site-packages", Path(sysconfig.get_paths()["purelib"])),
        (target / "etc", Path(sys.prefix) / "etc"),
        (target / "share", Path(sys.prefix) / "share"),
    ):
        if not link.is_symlink() and real.exists():
            shutil.rmtree(link, ignore_errors=True)
            link.symlink_to(real)
    python_line = f"#!{BIN}/python"
    for script in BIN.iterdir():
        copy = target / "bin" / script.name
        if copy.exists() or not script.is_file():
            continue
        with open(script, "rb") as fh:
            head = fh.readline()
        if head.decode(errors="replace").rstrip().startswith(python_line):  # a console script of the kit's venv
            copy.write_bytes(f"#!{target}/bin/python\n".encode() + script.read_bytes()[len(head) :])
            copy.chmod(0o755)
    return target / "bin"
