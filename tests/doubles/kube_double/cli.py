"""The command line: pflag's parsing, cobra's errors, --version and --help, then the component.

Where the project's states can tell (a unit that fails to start, its journal), the errors read
like the real binaries': ``Error: unknown flag: --x`` with exit status 1, pflag's value errors,
and start-up errors as cobra's ``Error: ...`` line (before 1.23) or component-base's klog
``"command failed"`` line (from 1.23).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import re
import sys

from . import MARK, REAL_MINORS, SUPPORTED_MINORS, Fatal, Log
from .flags import FLAGS, deprecation, flags_for


class FlagError(Exception):
    """A command line error: cobra prints ``Error: <msg>``, exit status 1."""


_DURATION = re.compile(r"[-+]?(?:0|(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|ms|s|m|h))+)")
_BOOLS = {
    "1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
    "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False,
}  # fmt: skip


def _parse_bool(text: str) -> bool:
    if text not in _BOOLS:
        raise ValueError(f'strconv.ParseBool: parsing "{text}": invalid syntax')
    return _BOOLS[text]


def _parse_int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        try:
            return int(text, 10)
        except ValueError:
            raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax') from None


def convert(type_: str, text: str):
    """Convert one flag value; raises ValueError with pflag's reason."""
    if type_ == "bool":
        return _parse_bool(text)
    if type_ == "version":
        return "raw" if text == "raw" else _parse_bool(text)
    if type_ == "int":
        return _parse_int(text)
    if type_ == "float":
        try:
            return float(text)
        except ValueError:
            raise ValueError(f'strconv.ParseFloat: parsing "{text}": invalid syntax') from None
    if type_ == "ip":
        try:
            return str(ipaddress.ip_address(text.strip()))
        except ValueError:
            raise ValueError(f'failed to parse IP: "{text}"') from None
    if type_ == "duration":
        if not _DURATION.fullmatch(text):
            raise ValueError(f'time: invalid duration "{text}"')
        return text
    if type_ == "strings":
        return [part.strip() for part in text.split(",")] if text else []
    if type_ == "map":
        result = {}
        for item in filter(None, (p.strip() for p in text.split(","))):
            key, eq, value = item.partition("=")
            result[key.strip()] = value.strip() if eq else ""
        return result
    if type_ == "portrange":
        match = re.fullmatch(r"\s*(\d+)\s*([-+])\s*(\d+)\s*", text) or re.fullmatch(
            r"\s*(\d+)\s*", text
        )
        if not match:
            raise ValueError(f'unable to parse port range: "{text}"')
        base = int(match.group(1))
        if match.lastindex == 1:
            return (base, base)
        other = int(match.group(3))
        high = base + other if match.group(2) == "+" else other
        if high < base or high > 65535:
            raise ValueError(f'"{text}" is not a valid port range')
        return (base, high)
    return text


def parse_flags(args: list[str], table: dict, on_set=None) -> tuple[dict, list[str]]:
    """Parse ``args`` like pflag. Returns ({name: value}, positional args).

    ``on_set(name)`` is called after each flag is set, where pflag prints a deprecated flag's
    warning.
    """
    values: dict = {}
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            positional.extend(args[i:])
            break
        if arg.startswith("--"):
            body = arg[2:]
            if not body or body[0] in "-=":
                raise FlagError(f"bad flag syntax: {arg}")
            name, eq, text = body.partition("=")
            name = name.replace("_", "-")  # cliflag.WordSepNormalizeFunc
            spec = table.get(name)
            if spec is None:
                raise FlagError(f"unknown flag: --{name}")
            label = f"--{name}"
        elif arg.startswith("-") and len(arg) > 1:
            short, rest = arg[1], arg[2:]
            name = {"v": "v", "h": "help"}.get(short)
            if name is None:
                raise FlagError(f"unknown shorthand flag: '{short}' in {arg}")
            spec = table[name]
            eq, text = ("=", rest[1:]) if rest.startswith("=") else ("=" if rest else "", rest)
            label = f"-{short}, --{name}"
        else:
            positional.append(arg)
            continue
        type_ = spec[0]
        if not eq:
            if type_ in ("bool", "version"):
                text = "true"
            elif i < len(args):
                text = args[i]
                i += 1
            else:
                raise FlagError(f"flag needs an argument: {label.split(', ')[-1]}")
        try:
            value = convert(type_, text)
        except ValueError as exc:
            raise FlagError(f'invalid argument "{text}" for "{label}" flag: {exc}') from None
        if type_ == "strings":
            values.setdefault(name, []).extend(value)
        elif type_ == "array":
            values.setdefault(name, []).append(value)
        elif type_ == "map":
            values.setdefault(name, {}).update(value)
        else:
            values[name] = value
        if on_set is not None:
            on_set(name)
    return values, positional


def usage(component: str, version: str, table: dict) -> str:
    lines = [
        f"{component} ({MARK} of Kubernetes v{version})",
        "",
        "Usage:",
        f"  {component} [flags]",
        "",
        "Flags:",
    ]
    for name in sorted(table):
        type_ = table[name][0]
        shown = "" if type_ in ("bool", "version") else f" {type_}"
        lines.append(f"      --{name}{shown}")
    return "\n".join(lines) + "\n"


def command_failed(minor: int, message: str) -> str:
    """How the component reports a start-up error: cobra's line, or component-base's klog."""
    if minor < 23:
        return f"Error: {message}"
    now = datetime.datetime.now()
    quoted = json.dumps(message, ensure_ascii=False)
    return (
        f'E{now:%m%d %H:%M:%S.%f} {os.getpid():>7} run.go:74] "command failed" '
        f"err={quoted} testDouble=true"
    )


def minor_of(version: str) -> int:
    """The minor version of ``1.MINOR.PATCH``; Fatal when the double does not pretend it (a minor
    with a real build included: there the real binary is the authority)."""
    match = re.fullmatch(r"1\.(\d+)\.(\d+)", version)
    low, high = SUPPORTED_MINORS
    if match and low <= int(match.group(1)) <= high:
        return int(match.group(1))
    message = (
        f"{MARK}: Kubernetes version {version!r} is not supported by this double "
        f"(supported: 1.{low} - 1.{high})"
    )
    first, last = REAL_MINORS
    if match and first <= int(match.group(1)) <= last:
        message += (
            f"; 1.{match.group(1)} has a real build (tools/upstream_build.py builds "
            f"1.{first} - 1.{last} from upstream's Go modules): run that instead"
        )
    raise Fatal(message)


def run(component: str, version: str, args: list[str]) -> int:
    """Be ``component`` of Kubernetes ``version`` with command line ``args``; the exit status."""
    from .apiserver import ApiServer
    from .components import ControllerManager, Scheduler

    try:
        minor = minor_of(version)
    except Fatal as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    table = flags_for(component, minor)

    def warn_deprecated(name: str) -> None:  # pflag's FlagSet.Set, on the command's stderr
        message = deprecation(component, name, minor)
        if message:
            print(f"Flag --{name} has been deprecated, {message}", file=sys.stderr)

    try:
        opts, positional = parse_flags(args, table, warn_deprecated)
    except FlagError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        unknown = re.fullmatch(r"unknown flag: --(.+)", str(exc))
        spec = FLAGS[component].get(unknown.group(1)) if unknown else None
        if spec:  # a hint for whoever reads the journal: the flag exists in other versions
            until = f"removed in 1.{spec[2]}" if spec[2] else "still there"
            print(
                f"{MARK}: --{unknown.group(1)} exists from 1.{spec[1]} ({until}); this is "
                f"{component} v{version}",
                file=sys.stderr,
            )
        return 1
    if opts.get("help"):
        sys.stdout.write(usage(component, version, table))
        return 0
    if opts.get("version"):
        if opts["version"] == "raw":
            print(json.dumps({"gitVersion": f"v{version}", "testDouble": True}))
        else:
            print(f"Kubernetes v{version} ({MARK})")
        return 0
    if positional:
        quoted = " ".join(json.dumps(a) for a in positional)
        message = f'"{component}" does not take any arguments, got [{quoted}]'
        print(command_failed(minor, message), file=sys.stderr)
        return 1
    log = Log(component, opts.get("v", 0))
    log.info(f"Version: v{version} ({MARK} of {component}, not a Kubernetes build)")
    classes = {
        "kube-apiserver": ApiServer,
        "kube-controller-manager": ControllerManager,
        "kube-scheduler": Scheduler,
    }
    app = classes[component](component, version, minor, opts, log)
    try:
        return app.run()
    except Fatal as exc:
        print(command_failed(minor, str(exc)), file=sys.stderr)
        return 1
    finally:
        app.cleanup()
