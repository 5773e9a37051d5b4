"""The one way the master's secret files are written (the CA and keys the k8s_pki ext_pillar
makes, the encryption keys' and the CA rotation's state): root-only, whole or not at all."""

import os


def write_private(path: str, text: str, replace: bool = True) -> None:
    """
    Write ``text`` to ``path`` 0600, whole or not at all: into a new temporary file (never
    through a link), synced to disk, then renamed over ``path`` (``replace``) or linked to
    it, which fails with FileExistsError when ``path`` exists (``replace=False``: made once).
    """
    temporary = f"{path}.tmp-{os.getpid()}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
