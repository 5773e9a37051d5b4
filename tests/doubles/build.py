"""Build the control-plane test doubles as one executable (a stdlib zipapp).

The lab's release mirror publishes the same bytes as kube-apiserver, kube-controller-manager and
kube-scheduler (each with a .sha256 beside it)::

    from tests.doubles.build import executable
    data = executable("1.18.6")  # bytes: "#!/usr/bin/env python3\\n" + a zip archive

The archive pretends to be Kubernetes ``version`` (stamped inside it) and picks the component
from the basename of ``argv[0]``. Same version and same source: same bytes (fixed timestamps and
modes, files in sorted order), so the mirror's sha256 is stable.
"""

from __future__ import annotations

import io
import re
import zipapp
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE = HERE / "kube_double"
INTERPRETER = "/usr/bin/env python3"
EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry

MAIN = """\
import sys

from kube_double.__main__ import main

sys.exit(main())
"""


def check_version(version: str) -> str:
    """``version`` without a leading "v"; ValueError unless it is 1.MINOR.PATCH."""
    version = version.lstrip("v")
    if not re.fullmatch(r"1\.\d+\.\d+", version):
        raise ValueError(f"invalid Kubernetes version {version!r}: expected 1.MINOR.PATCH")
    return version


def _entries(version: str) -> dict[str, bytes]:
    """The archive's files: {name in the archive: content}."""
    files = {
        f"kube_double/{path.name}": path.read_bytes()
        for path in sorted(PACKAGE.glob("*.py"))
        if path.name != "_stamp.py"
    }
    files["kube_double/_stamp.py"] = f'VERSION = "{version}"\n'.encode()
    files["__main__.py"] = MAIN.encode()
    return files


def executable(version: str) -> bytes:
    """The doubles pretending to be Kubernetes ``version``, as one executable zipapp."""
    version = check_version(version)
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(_entries(version).items()):
            info = zipfile.ZipInfo(name, date_time=EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            info.create_system = 3  # Unix, whatever the build host
            archive.writestr(info, data, compresslevel=9)
    raw.seek(0)
    out = io.BytesIO()
    zipapp.create_archive(raw, out, interpreter=INTERPRETER)
    return out.getvalue()


if __name__ == "__main__":  # python3 tests/doubles/build.py 1.18.6 out/kube-apiserver
    import os
    import sys

    target = Path(sys.argv[2])
    target.write_bytes(executable(sys.argv[1]))
    os.chmod(target, 0o755)
