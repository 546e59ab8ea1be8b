"""Installing a Debian package a test needs (a browser, a server) when it is missing.

Tests call this from their own setup, so a clean machine (CI) gets what they need; where it
cannot be installed (no apt-get, not root, no registry), ``unavailable`` is raised with the
reason, and the test skips saying so.
"""

from __future__ import annotations

import os
import shutil
import subprocess


def find_or_install(binary: str, package: str, unavailable: type[Exception]) -> str:
    """The path of ``binary``; installs Debian's ``package`` first when it is missing and we are root."""
    found = shutil.which(binary)
    if found:
        return found
    if not shutil.which("apt-get"):
        raise unavailable(f"{binary} is not installed and there is no apt-get to install it")
    if os.geteuid() != 0:
        raise unavailable(f"{binary} is not installed and installing it needs root (apt-get)")
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", package]):
        proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, check=False)
        if proc.returncode != 0:
            raise unavailable(f"{' '.join(command)} failed: {proc.stderr.strip()[-400:]}")
    found = shutil.which(binary)
    if not found:
        raise unavailable(f"apt-get installed {package} but no {binary} binary is on PATH")
    return found
