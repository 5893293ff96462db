"""Loading libtokenmgr: by the loader's path or $TOKENMGR_LIBRARY, and one
clear ImportError naming the path tried and the version found."""
from __future__ import annotations

import os
import subprocess

import pytest

import harness

IMPORT = "import tokenmgr; print(tokenmgr.library_path, tokenmgr.library_version)"


def load(env: dict) -> subprocess.CompletedProcess:
    return harness.python(IMPORT, env=env)


def import_error(r: subprocess.CompletedProcess) -> str:
    assert r.returncode != 0, r.stdout
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: tokenmgr: "), r.stderr
    return last[len("ImportError: ") :]


def test_by_environment_and_by_loader_path():
    lib = os.environ["TOKENMGR_LIBRARY"]
    r = load({})
    assert r.returncode == 0, r.stderr
    path, version = r.stdout.split()
    assert path == os.path.realpath(lib) and version.startswith("0.1.")
    # Without $TOKENMGR_LIBRARY: the dynamic loader's search path.
    r = load({"TOKENMGR_LIBRARY": "", "LD_LIBRARY_PATH": os.path.dirname(lib)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == os.path.realpath(lib)


def test_missing_library():
    msg = import_error(load({"TOKENMGR_LIBRARY": "/nonexistent/libtokenmgr.so.0"}))
    assert msg.startswith("tokenmgr: cannot load /nonexistent/libtokenmgr.so.0 ($TOKENMGR_LIBRARY): ")
    assert "set TOKENMGR_LIBRARY" in msg
    if not any("libtokenmgr.so.0" in line for line in subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True).stdout.splitlines()):
        msg = import_error(load({"TOKENMGR_LIBRARY": "", "LD_LIBRARY_PATH": ""}))
        assert msg.startswith("tokenmgr: cannot load libtokenmgr.so.0 (the dynamic loader's search path): ")


def test_wrong_version():
    old = os.environ["TKM_FAKE_OLDLIB"]
    msg = import_error(load({"TOKENMGR_LIBRARY": old}))
    assert msg == (
        "tokenmgr: %s is libtokenmgr version 0.0.7; this binding needs 0.1.x "
        "(set TOKENMGR_LIBRARY to the right library)" % os.path.realpath(old)
    )


def test_right_version_without_the_calls():
    partial = os.environ["TKM_FAKE_PARTIAL"]
    msg = import_error(load({"TOKENMGR_LIBRARY": partial}))
    assert msg.startswith("tokenmgr: %s is libtokenmgr version 0.1.0 but lacks tkm_" % os.path.realpath(partial))


def test_not_libtokenmgr():
    libz = "libz.so.1"
    msg = import_error(load({"TOKENMGR_LIBRARY": libz}))
    assert msg == "tokenmgr: libz.so.1 ($TOKENMGR_LIBRARY) is not libtokenmgr (it has no tkm_version)"
