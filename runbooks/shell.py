"""Find `${var}`s that a command step hands to an interpreter as code (`sh -c "… ${x} …"`).

Command steps never use a shell themselves, but a runbook can still start one and give it a script
built from variables; the value is then parsed as code. `script_references(argv)` reads the argv
the way the programs would: wrappers (`env`, `sudo`, `timeout`, `xargs`, `busybox`,
`kubectl exec --`, …) are skipped to the command they run, and for an interpreter the argument
that is code — the value of its eval flag (`-c`, `-e`, `--eval`, `-r`, `/c`, `-Command`, …), or
else its first operand (a script path, or an awk/sed program) — must not hold a `${var}`.
Commands that join their arguments into a shell line (`ssh host …`, `watch …`, `su -c …`) count
every later argument as code.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from runbooks.interpolate import VAR

__all__ = ["INTERPRETERS", "Finding", "script_references"]

Finding = tuple[str, str]
"""(what is wrong, the argument that an interpreter runs as code)."""


@dataclass(frozen=True, slots=True)
class Lang:
    """How one interpreter takes code on its command line."""

    code_flags: frozenset[str] = frozenset()
    """Flags whose value is code, a module or a script to run."""
    value_flags: frozenset[str] = frozenset()
    """Flags whose (separate) value is data."""
    cluster: str = ""
    """Short code flags that may be combined (`-ne`) or take attached code (`-cprint(1)`)."""
    value_letters: str = ""
    """Short flags with an attached data value (`-Wignore`): the rest of the cluster is data."""
    value_last: str = ""
    """Short flags that, last in a cluster, take the next argument as data (`-euo pipefail`)."""
    program_first: bool = True
    """Without a code flag, the first operand is code (a script path or an awk/sed program)."""
    fold_case: bool = False
    """Flags are case-insensitive (PowerShell)."""


def _langs(names: str, lang: Lang) -> dict[str, Lang]:
    return dict.fromkeys(names.split(), lang)


_E = Lang(frozenset({"-e", "-l"}), cluster="e")
INTERPRETERS: dict[str, Lang] = {
    **_langs("sh bash dash zsh ksh mksh pdksh oksh ash hush msh csh tcsh fish yash posh rbash "
             "rc es nu elvish xonsh",
             Lang(frozenset({"-c", "--command"}),
                  frozenset({"-o", "+o", "-O", "+O", "--rcfile", "--init-file"}),
                  value_last="oO")),
    **_langs("python pypy ipython jython",
             Lang(frozenset({"-c", "-m"}), frozenset({"-W", "-X"}), cluster="cm",
                  value_letters="WX")),
    **_langs("perl", Lang(frozenset({"-e", "-E", "-M", "-m", "-I"}), frozenset({"-x"}),
                          cluster="eEMmI")),
    **_langs("ruby jruby", Lang(frozenset({"-e", "-r", "-I"}), cluster="erI")),
    **_langs("node nodejs bun deno ts-node tsx",
             Lang(frozenset({"-e", "--eval", "-p", "--print", "-r", "--require", "--import",
                             "--loader", "--experimental-loader"}), cluster="epr")),
    **_langs("pwsh powershell",
             Lang(frozenset({"-c", "-command", "-encodedcommand", "-ec", "-e", "-file", "-f",
                             "-commandwithargs", "-cwa"}), fold_case=True)),
    **_langs("awk gawk mawk nawk",
             Lang(frozenset({"-f", "-e", "--source", "--file", "-i", "--include"}),
                  frozenset({"-F", "-v", "--assign", "--field-separator"}), cluster="fe",
                  value_letters="Fv")),
    **_langs("sed gsed", Lang(frozenset({"-e", "--expression", "-f", "--file"}), cluster="ef")),
    **_langs("lua luajit tclsh wish rscript julia groovy racket osascript r guile", _E),
    "php": Lang(frozenset({"-r", "-R", "-B", "-E", "-f", "-F"}), cluster="r"),
    "sbcl": Lang(frozenset({"--eval", "--load", "--script"})),
    "expect": Lang(frozenset({"-c", "-f"}), cluster="c"),
    "gdb": Lang(frozenset({"-ex", "-x", "--eval-command", "--command", "-iex"}),
                program_first=False),
    "vim": Lang(frozenset({"-c", "--cmd", "-S"}), program_first=False),
    "cmd": Lang(frozenset({"/c", "/k", "/r"}), fold_case=True),
    # database clients: SQL (or a script file) is code too; their first operand is a database
    "psql": Lang(frozenset({"-c", "--command", "-f", "--file"}),
                 frozenset({"-h", "--host", "-p", "--port", "-U", "--username", "-d", "--dbname",
                            "-v", "--set", "--variable", "-o", "--output", "-L", "--log-file",
                            "-F", "-R", "-P", "--pset", "-T"}),
                 program_first=False, cluster="cf", value_letters="hpUdvoLFRPT"),
    **_langs("mysql mariadb", Lang(frozenset({"-e", "--execute"}),
                                   frozenset({"-h", "--host", "-P", "--port", "-u", "--user",
                                              "-D", "--database", "-S", "--socket"}),
                                   program_first=False, cluster="e", value_letters="hPuDS")),
    **_langs("clickhouse-client cqlsh", Lang(frozenset({"-q", "--query", "-e", "--execute",
                                                        "-f", "--file"}), program_first=False)),
    "mongosh": Lang(frozenset({"--eval", "--file", "-f"}), program_first=False),
}
"""Interpreter (basename, version suffix dropped) → how it takes code."""

# Commands that run the rest of their argv as another command; the number is how many operands
# come before that command (timeout's duration, chroot's root, …).
_WRAPPERS: dict[str, int] = {
    **dict.fromkeys("env nice nohup setsid stdbuf time command exec sudo doas runuser xargs "
                    "unshare nsenter systemd-run firejail bwrap proot ionice busybox toybox "
                    "strace ltrace valgrind pkexec caffeinate catchsegv".split(), 0),
    **dict.fromkeys("timeout chrt taskset flock chroot".split(), 1),
}
_WRAPPER_VALUE_FLAGS = frozenset({
    "-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-n", "-I", "-L", "-P", "-d", "-s",
    "-E", "-a", "-S", "-k", "-o", "-w", "-e", "--signal", "--kill-after", "--user", "--group",
    "--chdir", "--unset", "--env", "--name", "--workdir", "--volume", "-v",
})
_CONTAINERS = frozenset({"kubectl", "oc", "docker", "podman", "nerdctl", "crictl", "lxc"})
# Commands that join their arguments into one shell command line (here or on another host).
_SHELL_LINES: dict[str, int] = {"ssh": 1, "rsh": 1, "watch": 0, "su": 0, "script": 0,
                                "parallel": 0, "at": 0, "tmux": 0, "screen": 0}
_FIND_EXEC = frozenset({"-exec", "-execdir", "-ok", "-okdir"})


def _name(arg: str) -> str:
    base = os.path.basename(arg).lower().removesuffix(".exe")
    return re.sub(r"[\d.-]+$", "", base) or base  # python3.11 → python, bash5 → bash


def _has_var(arg: str) -> bool:
    return any(not m.group(1) for m in VAR.finditer(arg))  # ${secret:…} is not event data


def script_references(argv: tuple[str, ...] | list[str]) -> list[Finding]:
    """(description, argument) of every argument an interpreter runs as code holding a ${var}."""
    found: list[Finding] = []
    _command(list(argv), 0, found)
    return found


def _command(argv: list[str], i: int, found: list[Finding]) -> None:
    while i < len(argv):
        name = _name(argv[i])
        if name in _WRAPPERS:
            i = _after_options(argv, i + 1, _WRAPPERS[name], env=name == "env")
        elif name in _CONTAINERS:
            i = _container_command(argv, i)
        elif name == "find":
            i = next((j + 1 for j in range(i, len(argv)) if argv[j] in _FIND_EXEC), len(argv))
        elif name in _SHELL_LINES:
            _shell_line(argv, i, found)
            return
        elif name in INTERPRETERS:
            _interpreter(argv, i, INTERPRETERS[name], found)
            return
        else:
            return


def _after_options(argv: list[str], j: int, operands: int, *, env: bool = False) -> int:
    """Index of the wrapped command: past options, `NAME=VALUE` (env) and leading operands."""
    while j < len(argv):
        arg = argv[j]
        if arg == "--":
            return j + 1
        if arg.startswith("-") and len(arg) > 1:
            j += 2 if arg in _WRAPPER_VALUE_FLAGS else 1
        elif env and "=" in arg:
            j += 1
        elif operands > 0:
            operands, j = operands - 1, j + 1
        else:
            return j
    return j


def _container_command(argv: list[str], i: int) -> int:
    """`kubectl exec POD -- CMD`, `docker exec|run [opts] NAME CMD`: the index of CMD."""
    rest = argv[i:]
    if "--" in rest:
        return i + rest.index("--") + 1
    verbs = [k for k, a in enumerate(rest) if a in ("exec", "run")]
    if not verbs:
        return len(argv)
    return _after_options(argv, i + verbs[0] + 1, 1)


def _shell_line(argv: list[str], i: int, found: list[Finding]) -> None:
    start = _after_options(argv, i + 1, _SHELL_LINES[_name(argv[i])])
    for k in range(i + 1, len(argv)):
        if _has_var(argv[k]) and (k >= start or argv[k - 1] == "-c"):
            found.append((f"{argv[i]} runs {argv[k]!r} as a shell command line", argv[k]))


def _interpreter(argv: list[str], i: int, lang: Lang, found: list[Finding]) -> None:
    j = i + 1
    while j < len(argv):
        arg, nxt = argv[j], _next(argv, j)
        code = _flag_code(arg, nxt, lang)
        if code is not None:
            if _has_var(code):
                found.append((f"{argv[i]} runs {code!r} as code", code))
            return
        if arg == "--":
            j += 1
            break
        if (arg.lower() if lang.fold_case else arg) in lang.value_flags or (
                lang.value_last and _is_option(arg, lang) and arg[-1] in lang.value_last):
            j += 2
        elif _is_option(arg, lang) or not lang.program_first:
            j += 1  # an operand of a program_first=False command: options may follow (getopt)
        else:
            break
    if j < len(argv) and lang.program_first and _has_var(argv[j]):
        found.append((f"{argv[i]} runs {argv[j]!r} as its script", argv[j]))


def _next(argv: list[str], j: int) -> str:
    """The argument a flag at j takes (`-c -- CODE` takes CODE)."""
    rest = argv[j + 1 :]
    if rest[:1] == ["--"]:
        rest = rest[1:]
    return rest[0] if rest else ""


def _is_option(arg: str, lang: Lang) -> bool:
    return len(arg) > 1 and (arg[0] in "-+" or lang.fold_case and arg[0] == "/")


def _flag_code(arg: str, nxt: str, lang: Lang) -> str | None:
    """The code a flag introduces (the next argument or an attached value), else None."""
    key = arg.lower() if lang.fold_case else arg
    if key in lang.code_flags:
        return nxt
    if key.startswith("--") and "=" in key and key.split("=", 1)[0] in lang.code_flags:
        return arg.split("=", 1)[1]
    if lang.cluster and len(arg) > 1 and arg[0] == "-" and arg[1] != "-":
        for k, letter in enumerate(arg[1:]):
            if letter in lang.value_letters:
                return None
            if letter in lang.cluster:
                rest = arg[k + 2 :]
                # `-pe CODE` combines flags; `-cprint(1)` / `-e'…'` attaches the code
                return nxt if not rest or set(rest) <= set(lang.cluster) else rest
    return None
