#!/usr/bin/env python3
"""The lab's command line: up, down, exec, salt, status (see tools/lab/lab.py).

labctl.py up                      build/boot/converge the lab, run the orchestration
labctl.py up --no-orchestration   stop after the keys are accepted
labctl.py up --controllers 5      five controllers (1-9, the seed's pattern; default: the
                                  running lab's count, three for a new lab)
labctl.py down                    remove the lab (keeps the image cache, the PKI and the logs)
labctl.py exec HOST -- CMD...     run a shell command on a controller (exit code passed through)
labctl.py salt -- CMD...          run salt / salt-run / salt-key against the lab's master
labctl.py status                  what runs
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository
from tools.lab import lab

SALT_COMMANDS = ("salt", "salt-run", "salt-key", "salt-cp")


def _words(rest: list[str]) -> list[str]:
    if rest and rest[0] == "--":
        rest = rest[1:]
    return rest


def cmd_exec(host: str, rest: list[str]) -> int:
    words = _words(rest)
    if not words:
        raise lab.LabError("exec: no command given (labctl.py exec HOST -- CMD)")
    # one word is a shell string as typed (pipes and all); several are joined as arguments
    cmd = words[0] if len(words) == 1 else shlex.join(words)
    return subprocess.run(lab.in_container(host, cmd), check=False).returncode


def cmd_salt(rest: list[str]) -> int:
    words = _words(rest)
    if len(words) == 1:
        words = shlex.split(words[0])
    if not words or words[0] not in SALT_COMMANDS:
        raise lab.LabError(f"salt: the command must start with one of {', '.join(SALT_COMMANDS)}")
    argv = lab.in_netns([lab.salt_bin(words[0]), "-c", lab.MASTER_DIR, *words[1:]])
    return subprocess.run([str(a) for a in argv], check=False).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labctl.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="build and converge the lab, then run the orchestration")
    up.add_argument("--no-orchestration", action="store_true", help="stop after keys")
    up.add_argument("--controllers", type=int, help="controller count (1-9)")
    up.add_argument("--version", help="Kubernetes release (default: the running lab's, 1.37.2)")
    sub.add_parser("down", help="remove the lab")
    ex = sub.add_parser("exec", help="run a command on a controller")
    ex.add_argument("host")
    ex.add_argument("rest", nargs=argparse.REMAINDER)
    sa = sub.add_parser("salt", help="run a salt command on the lab master")
    sa.add_argument("rest", nargs=argparse.REMAINDER)
    sub.add_parser("status", help="show what runs")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            return lab.bring_up(not args.no_orchestration, args.controllers, args.version)
        if args.command == "down":
            return 1 if lab.down() else 0
        if args.command == "exec":
            return cmd_exec(args.host, args.rest)
        if args.command == "salt":
            return cmd_salt(args.rest)
        return lab.status()
    except lab.LabError as exc:
        lab.say(f"ERROR: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
