#!/usr/bin/env python3
"""Writes docs/CLI.md, the reference of every `conveyor` command and option, from the argument
parser's own description of them (`conveyor --experimental-dump-help`).

    swift build && python3 scripts/gen-cli-doc.py            # rewrite docs/CLI.md
    python3 scripts/gen-cli-doc.py --check                   # exit 1 if docs/CLI.md is out of date
    python3 scripts/gen-cli-doc.py --conveyor PATH --output -   # another binary; print instead

The binary is --conveyor, else $CONVEYOR_BIN, else .build/debug/conveyor. Which options get an
environment name mirrors Sources/CLIConfig/CommandTree.swift: every option and flag with a long
name that --help shows, but --help and --version; an inversion pair (--x/--no-x) is one option.
"""
import argparse
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "CLI.md")
REFRESH = "swift build && python3 scripts/gen-cli-doc.py"
PARSER_OWN = {"help", "version", "experimental-dump-help", "generate-completion-script"}

HEADER = """\
# `conveyor` command-line reference

Generated from the argument parser (`conveyor --experimental-dump-help`) by
`scripts/gen-cli-doc.py`. Do not edit it by hand: change the help in `Sources/ConveyorCLI`, then run
`{refresh}`. `swift test --filter CLIReferenceTests` fails while this file is out of date.

Every command also takes `-h`/`--help` and `--version`.

- [Configuration: the environment and a config file](#configuration-the-environment-and-a-config-file)
- [Exit statuses](#exit-statuses)
{contents}
"""

CONFIGURATION = """\
## Configuration: the environment and a config file

Every option below (but `--help`, `--version` and hidden ones) can also come from the environment
and from a config file. Positional arguments come from the command line only.

**Precedence**, for each option on its own: the command line, then the environment, then the config
file, then the option's default. An option given on the command line ignores the environment and
the file entirely (a repeated option's list is not merged).

**Environment.** One name per option: `CONVEYOR_` and the long name upper-cased, `-` as `_`
(`--broker` → `CONVEYOR_BROKER`, `--max-queued` → `CONVEYOR_MAX_QUEUED`); the tables below give
each. The same name serves every command that has the option. An empty variable counts as unset.
A `CONVEYOR_` variable that names no option of any command is a warning on standard error, not an
error (the environment is shared with other programs and versions); `CONVEYOR_BIN`,
`CONVEYOR_TEST_ECHO` and `CONVEYOR_GOLDEN_*` belong to the test kit and are not warned about.

**Config file.** `--config FILE` (anywhere before `--`, for any command), or `CONVEYOR_CONFIG=FILE`;
none is read otherwise. It is a small subset of [TOML](https://toml.io): keys are the options' long
names; keys at the top are shared (each command that has the option takes it, the others ignore
it); a `[COMMAND]` section (`[journal.verify]` for a subcommand) is for that command only and beats
the top. A command's section, then its parent's, then the top.

```toml
# conveyor.toml
broker = "tcp://10.0.0.5:5555"     # submit, status, cancel, purge, stats, dead-letters
log-level = "debug"

[broker]
frontend = "tcp://*:5555"
max-queued = 100_000
in-memory = true

[consumer]
backend = "tcp://10.0.0.5:5556"
threads = 8
```

Values: strings are quoted (`"…"` with TOML's escapes, or `'…'` as written); numbers (`100_000`,
`2.5`) and booleans bare; arrays (`["a", "b"]`, also over several lines) for options that can be
given more than once. Comments start with `#`. Left out, and refused with their line: quoted and
dotted keys, inline tables, arrays of tables, multi-line strings, dates, a key or a section given
twice, and a bare word where a string belongs (`broker = tcp://…`).

**Flags** (options without a value) take `true` or `false`: in the file as TOML booleans, in the
environment as `true`/`false`, `1`/`0`, `yes`/`no` or `on`/`off`. False leaves the flag off (or
gives the `--no-` half of a `--x/--no-x` pair).

**Options given more than once** take an array in the file and a comma-separated list in the
environment (`\\,` for a comma inside a value; blanks around each value are dropped).

**Errors.** A config file that cannot be read, is not this TOML subset, or has a section that names
no command or a key that names no option of its section's command (nor of any command, at the top)
stops every command with exit status 64, naming the file, the line and the key. A value the option
refuses is reported with where it came from, exit status 64:

```
Error: CONVEYOR_BROKER=5555 (from the environment): --broker must look like tcp://HOST:PORT (for example tcp://127.0.0.1:5555), not '5555'
Error: max-queued = "lots" (from conveyor.toml:7): The value 'lots' is invalid for '--max-queued <max-queued>'
```

`--help`, `--version` and `--experimental-dump-help` work whatever the environment and the file
hold: the file is not read for them.

**Where a value came from:** `conveyor config show [COMMAND [OPTIONS…]]` prints each option of the
command (of every command without one) with its effective value and its source: `flag`,
`env CONVEYOR_NAME`, `file PATH:LINE` or `default`. Options after COMMAND are that command's, as
you would give them (shown as `flag`). `--json` prints
`{"configFile": {"path", "namedBy"} or null, "commands": [{"command", "options": [{"option", "key",
"environment", "value", "source", "variable" or "file" and "line"}]}]}`, where `value` is a string
(`"true"`/`"false"` for a flag), `null` when unset with no default, or an array for an option given
more than once, and `source` is `flag`, `env`, `file` or `default`.

A consumer supervisor (`conveyor consumer --processes N`) gives its children its own command line
and environment, so they take the same values; a child (`--process-index`, given by the supervisor)
never takes `processes` from the environment or the file.
"""

EXIT_STATUSES = """\
## Exit statuses

| Status | Meaning |
| --- | --- |
| 0 | Success. |
| 1 | A task or a request failed: a task ended with an error or timed out, a status for an id the broker does not know, a cancel that could not cancel, a journal that does not verify. |
| 64 | Bad usage: an unknown option, a missing argument or a bad value, from the command line, the environment or the config file; a config file that cannot be read or has an unknown key. |
| 69 | The broker cannot be reached: the connection was refused or failed, its handshake failed, or the endpoint is a broker's backend (`ExitStatus.unreachable` in `Sources/ConveyorCLI/Options.swift`). Said within a second, once. |
| 75 | A consumer process with a stuck handler exits for its supervisor to replace it (`Consumer.stuckExitCode`). |
| 78 | A consumer that cannot work as configured: pointed at the producers' port, or at a broker of another protocol. A supervisor whose child exits 78 stops instead of restarting it (`Consumer.misconfiguredExitCode`). |
| 130 | `conveyor demo` stopped by SIGINT or SIGTERM. |
"""


def long_name(argument):
    for name in argument.get("names") or []:
        if name["kind"] in ("long", "longWithSingleDash"):
            return name
    return None


def spelling(name):
    return ("-" if name["kind"] in ("short", "longWithSingleDash") else "--") + name["name"]


def environment_name(key):
    return "CONVEYOR_" + key.upper().replace("-", "_")


def cell(text):
    return (text or "").replace("|", "\\|").replace("\n", " ").strip()


def options_of(command):
    """(spellings, environment name or None, default, help, value name) for each option shown."""
    arguments = command.get("arguments") or []
    flags = {n["name"] for a in arguments if a["kind"] == "flag" for n in a.get("names") or []
             if n["kind"] in ("long", "longWithSingleDash")}

    def positive(name):
        if name.startswith("no-") and name[3:] in flags:
            return name[3:]
        if name.startswith("disable-") and "enable-" + name[8:] in flags:
            return "enable-" + name[8:]
        return None

    negatives = {}
    for argument in arguments:
        name = long_name(argument)
        if argument["kind"] == "flag" and name and positive(name["name"]):
            negatives[positive(name["name"])] = spelling(name)
    rows = []
    for argument in arguments:
        if argument["kind"] == "positional" or not argument.get("shouldDisplay", True):
            continue
        name = long_name(argument)
        if argument["kind"] == "flag" and name and positive(name["name"]):
            continue
        spellings = [spelling(n) for n in argument.get("names") or []]
        key = name["name"] if name else None
        if key in negatives:
            spellings.append(negatives[key])
        value_name = argument.get("valueName") if argument["kind"] == "option" else None
        shown = ", ".join("`%s%s`" % (s, " <%s>" % value_name if value_name and s.startswith("--") else "") for s in spellings)
        if argument["kind"] == "option" and argument.get("isRepeating"):
            shown += " (repeatable)"
        if argument["kind"] == "flag" and argument.get("isRepeating"):
            shown += " (counted)"
        configurable = key is not None and key not in PARSER_OWN
        default = argument.get("defaultValue")
        if argument["kind"] == "flag":
            if key in negatives:
                default = "on" if default and default.lstrip("-") == key else ("off" if default else None)
            elif argument.get("isRepeating"):
                default = "0"
            else:
                default = "off"
        help_text = argument.get("abstract") or ""
        if argument.get("discussion"):
            help_text += " " + argument["discussion"]
        rows.append((shown, environment_name(key) if configurable else None, default, help_text, configurable))
    return rows


def usage(path, command):
    words = ["conveyor"] + path
    if any(a["kind"] != "positional" and a.get("shouldDisplay", True) and (long_name(a) or {}).get("name") not in PARSER_OWN
           for a in command.get("arguments") or []):
        words.append("[<options>]")
    if command.get("subcommands"):
        words.append("<subcommand>")
    for argument in command.get("arguments") or []:
        if argument["kind"] != "positional" or not argument.get("shouldDisplay", True):
            continue
        word = "<%s>" % argument.get("valueName", "value")
        if argument.get("isRepeating"):
            word += " ..."
        words.append("[%s]" % word if argument.get("isOptional") else word)
    return " ".join(words)


def anchor(title):
    text = "".join(c for c in title.lower() if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def render(tool):
    root = tool["command"]
    sections = []
    contents = []

    def walk(command, path):
        if not command.get("shouldDisplay", True) or (path and path[0] == "help"):
            return
        title = " ".join(["conveyor"] + path)
        heading = "`%s`" % title if path else "`conveyor` (global options)"
        depth = "  " * max(0, len(path) - 1)
        contents.append("%s- [%s](#%s)" % (depth, heading, anchor(heading)))
        lines = ["## %s" % heading, ""]
        if command.get("abstract"):
            lines += [command["abstract"], ""]
        for paragraph in (command.get("discussion") or "").split("\n"):
            # One paragraph a line; runs of blanks inside a line (a wrapped Swift string) as one.
            if paragraph.strip():
                lines += [re.sub(r"(?<=\S) {2,}", " ", paragraph.strip()), ""]
        lines += ["```", usage(path, command), "```", ""]
        subcommands = [s for s in command.get("subcommands") or [] if s.get("shouldDisplay", True) and s["commandName"] != "help"]
        if subcommands:
            lines += ["| Subcommand | What it does |", "| --- | --- |"]
            for sub in subcommands:
                sub_title = " ".join(["conveyor"] + path + [sub["commandName"]])
                lines.append("| [`%s`](#%s) | %s |" % (sub["commandName"], anchor(sub_title), cell(sub.get("abstract"))))
            lines.append("")
        positionals = [a for a in command.get("arguments") or [] if a["kind"] == "positional" and a.get("shouldDisplay", True)]
        if positionals:
            lines += ["| Argument | Help |", "| --- | --- |"]
            for argument in positionals:
                word = "<%s>" % argument.get("valueName", "value")
                if argument.get("isRepeating"):
                    word += " ..."
                optional = " (optional)" if argument.get("isOptional") else ""
                lines.append("| `%s`%s | %s |" % (word, optional, cell(argument.get("abstract"))))
            lines.append("")
        rows = [r for r in options_of(command) if r[4]]
        if rows:
            lines += ["| Option | Environment | Default | Help |", "| --- | --- | --- | --- |"]
            for shown, environment, default, help_text, _ in rows:
                lines.append("| %s | `%s` | %s | %s |" % (
                    shown, environment, "`%s`" % cell(default) if default else "—", cell(help_text)))
            lines.append("")
        sections.append("\n".join(lines))
        for sub in command.get("subcommands") or []:
            walk(sub, path + [sub["commandName"]])

    walk(root, [])
    document = HEADER.format(refresh=REFRESH, contents="\n".join(contents)) + "\n" + CONFIGURATION + "\n" + EXIT_STATUSES
    return document + "\n" + "\n".join(sections).rstrip() + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conveyor", help="the conveyor binary (default: $CONVEYOR_BIN, else .build/debug/conveyor)")
    parser.add_argument("--output", default=DOC, help="where to write (- for standard output; default docs/CLI.md)")
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/CLI.md differs from what would be written")
    options = parser.parse_args()
    binary = options.conveyor or os.environ.get("CONVEYOR_BIN") or os.path.join(ROOT, ".build", "debug", "conveyor")
    if not os.path.exists(binary):
        sys.exit("error: %s not found: build it (swift build) or give --conveyor PATH" % binary)
    # Without the environment's CONVEYOR_ variables or a config file: they must not change the reference.
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    dump = subprocess.run([binary, "--experimental-dump-help"], capture_output=True, text=True, env=environment, check=True)
    document = render(json.loads(dump.stdout))
    if options.check:
        with open(DOC, encoding="utf-8") as existing:
            if existing.read() != document:
                sys.exit("error: docs/CLI.md is out of date with the argument parser: run `%s` and commit it" % REFRESH)
        return
    if options.output == "-":
        sys.stdout.write(document)
    else:
        with open(options.output, "w", encoding="utf-8") as out:
            out.write(document)


if __name__ == "__main__":
    main()
