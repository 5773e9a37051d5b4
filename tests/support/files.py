"""
Writing a file that may hold a secret (a key, a kubeconfig, the encryption
config, a secrets pillar file) so that it is never readable beyond its mode,
not even for a moment: created with its mode (no write-then-chmod), and an
existing file narrowed to the mode before the new text goes in.
"""

import os


def write_file(path, text, mode=0o600):
    """Write ``text`` to ``path`` with permission bits ``mode`` (an int) from the first byte."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, mode)
    try:
        # O_CREAT's mode is masked by the umask and ignored for an existing
        # file: set it on the open file before writing anything.
        os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
