"""The documented installation: `pip install ./bindings/python` with
Debian's pip and setuptools, into a venv that sees the system's packages
(Debian 12's pip refuses to install into the system Python), no network."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig

import harness


def run(cmd, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the installed copy, not the source tree
    env.update(kw.pop("env", {}))
    # pip must not reach an index: none is configured beyond PyPI, which
    # this machine cannot reach; --no-index makes the point explicit.
    env["PIP_NO_INDEX"] = "1"
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=150, **kw)


def test_pip_install_into_a_venv(tmp_path):
    venv = tmp_path / "venv"
    r = run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)])
    assert r.returncode == 0, r.stderr
    # A copy of the tree: pip builds in place (build/, *.egg-info).
    src = tmp_path / "tokenmgr-src"
    shutil.copytree(os.path.join(harness.SOURCE_DIR, "bindings", "python"), src,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    pip = str(venv / "bin" / "pip")
    r = run([pip, "install", "--no-build-isolation", str(src)])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Successfully installed tokenmgr-0.1.0" in r.stdout

    py = str(venv / "bin" / "python")
    code = (
        "import pydoc, tokenmgr, tokenmgr.compat\n"
        "print(tokenmgr.__file__)\n"
        "print(tokenmgr.library_version)\n"
        "print(pydoc.render_doc(tokenmgr.Client, renderer=pydoc.plaintext).count('bucket_soft_floor'))\n"
    )
    r = run([py, "-c", code], cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    where, version, mentions = r.stdout.split()
    assert where.startswith(str(venv)) and version.startswith("0.1.") and int(mentions) >= 1
    # py.typed travels with it (type checkers see the hints).
    assert os.path.exists(os.path.join(os.path.dirname(where), "py.typed"))

    # Without a venv, Debian 12's pip refuses (PEP 668): the reason the
    # documented command uses one.
    if os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")):
        r = run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-build-isolation", str(src)])
        assert r.returncode != 0 and "externally-managed-environment" in r.stdout + r.stderr
