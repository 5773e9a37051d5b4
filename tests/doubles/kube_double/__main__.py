"""Entry point: be the component named by the basename of ``argv[0]``.

The built executable (tests/doubles/build.py) is published as kube-apiserver,
kube-controller-manager and kube-scheduler, with its version in ``_stamp.py``. For tests, from the
repository's root::

    python -m tests.doubles.kube_double kube-apiserver --version-stamp 1.18.6 --etcd-servers=...
"""

from __future__ import annotations

import os
import sys

from . import COMPONENTS, MARK

USAGE = (
    f"{MARK}: cannot tell which component to be from the name {{name!r}}; run it as one of "
    f"{', '.join(COMPONENTS)}, or as: python -m tests.doubles.kube_double COMPONENT "
    "--version-stamp 1.MINOR.PATCH [flags]"
)


def stamped_version() -> str | None:
    try:
        from ._stamp import VERSION  # written into the archive by tests/doubles/build.py
    except ImportError:
        return None
    return VERSION


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    name, args, version = os.path.basename(argv[0]), argv[1:], stamped_version()
    if name not in COMPONENTS:
        if not args or args[0] not in COMPONENTS:
            print(USAGE.format(name=name), file=sys.stderr)
            return 1
        name, args = args[0], args[1:]
        if args[:1] == ["--version-stamp"] and len(args) > 1:
            version, args = args[1], args[2:]
        elif args[:1] and args[0].startswith("--version-stamp="):
            version, args = args[0].partition("=")[2], args[1:]
    if version is None:
        print(f"{MARK}: no version stamped; pass --version-stamp 1.MINOR.PATCH", file=sys.stderr)
        return 1
    from .cli import run

    return run(name, version.lstrip("v"), args)


if __name__ == "__main__":
    sys.exit(main())
