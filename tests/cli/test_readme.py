"""README.md's command lines against the tool's own --help: every `--option` that a README
example or synopsis gives to `recalign COMMAND` (or to `recalign-synth`, or to
`bash scripts/main.sh`, which runs `recalign align`) must be an option that command lists,
so a renamed or removed option cannot stay in the user docs. Commands are taken from the
```sh blocks, the indented blocks and inline `recalign ...` spans; `DATA = ...` lines are
checked against `align --help` (every data command reads DATA the same way). Runs only
--help: well under a second."""
import os
import re
import subprocess

import pytest

import cli_common

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")
HIDDEN = {"--test-batch-delay-ms"}  # documented as hidden (a test setting)
_help = {}


def help_options(program, command=None):
    key = (program, command)
    if key not in _help:
        args = [program] + ([command] if command else []) + ["--help"]
        out = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=True).stdout.decode()
        _help[key] = set(re.findall(r"^\s{2}(?:-\w,)?(--[a-z0-9][a-z0-9-]*)", out, re.M)) | {"--help"}
    return _help[key]


def readme_commands():
    """(line number, command text) for every recalign command line the README shows."""
    lines = open(README, encoding="utf-8").read().split("\n")
    found, block, prose = [], [], []  # block: (line number, text) of a code block, continuations joined
    fence = None  # the language of the open ``` block
    for no, line in enumerate(lines, 1):
        if line.lstrip().startswith("```"):
            fence = None if fence is not None else line.strip()[3:]
            continue
        indented = line.startswith("    ") and not line.lstrip().startswith(("* ", "- "))
        if fence is not None or (indented and (block or line.strip().startswith(("recalign", "DATA", "#")))):
            body = re.sub(r"(^|\s)#\s.*$", "", line).strip()
            if fence in ("python", "cpp") or not body:
                continue
            if block and (block[-1][1].endswith("\\") or body.startswith(("[", "--"))):
                block[-1] = (block[-1][0], block[-1][1].rstrip("\\") + " " + body)
            else:
                block.append((no, body))
            continue
        found += block
        block = []
        prose.append((no, line))
    found += block
    text = "\n".join(line for _, line in prose)
    for m in re.finditer(r"`([^`]+)`", text):
        span = " ".join(m.group(1).split())
        if re.match(r"(mpirun .*)?(\S*/)?recalign(-synth)? |bash scripts/main\.sh ", span):
            found.append((prose[text.count("\n", 0, m.start())][0], span))
    return sorted(found)


def commands_with_options():
    """(line number, program, subcommand or None, [options]) per recalign invocation."""
    out = []
    for no, text in readme_commands():
        for part in re.split(r"\|(?=\s*\S*recalign)|&&", text):
            tokens = part.replace("[", " ").replace("]", " ").split()
            for i, tok in enumerate(tokens):
                name = tok.split("/")[-1]
                if tok == "DATA" and i + 1 < len(tokens) and tokens[i + 1] == "=":
                    program, command, rest = "recalign", "align", tokens[i + 2:]
                elif tok == "scripts/main.sh":
                    program, command, rest = "recalign", "align", tokens[i + 1:]
                elif name == "recalign-synth":
                    program, command, rest = "recalign-synth", None, tokens[i + 1:]
                elif name == "recalign" and i + 1 < len(tokens) and re.fullmatch(r"[a-z]+", tokens[i + 1]) \
                        and tokens[i + 1] != "and":
                    program, command, rest = "recalign", tokens[i + 1], tokens[i + 2:]
                else:
                    continue
                options = [t.split("=")[0] for t in rest if re.fullmatch(r"--[a-z][a-z0-9-]*(=.*)?", t)]
                out.append((no, program, command, options))
                break
    return out


def test_readme_shows_commands():
    found = commands_with_options()
    commands = {c for _, p, c, _ in found if p == "recalign"}
    # a parser that finds nothing would pass the test below: the README shows every command
    assert {"align", "spectrum", "tradeoff", "denoise", "project", "figures", "merge", "info"} <= commands, commands
    assert any(p == "recalign-synth" for _, p, _, _ in found)


def synth_binary():
    return os.environ.get("RECALIGN_SYNTH") or os.path.join(os.path.dirname(cli_common.RECALIGN), "..", "synth",
                                                           "recalign-synth")


def test_readme_options_exist():
    top = subprocess.run([cli_common.RECALIGN, "--help"], stdout=subprocess.PIPE, check=True).stdout.decode()
    wrong = []
    for no, program, command, options in commands_with_options():
        if program == "recalign-synth":
            if not os.access(synth_binary(), os.X_OK):
                pytest.skip(f"recalign-synth not built at {synth_binary()}")
            known, label = help_options(synth_binary()), "recalign-synth"
        elif not re.search(rf"^\s+{command}\s", top, re.M):
            wrong.append(f"README.md:{no}: recalign {command}: no such command")
            continue
        else:
            known, label = help_options(cli_common.RECALIGN, command), f"recalign {command}"
        wrong += [f"README.md:{no}: {label} {o}: not in its --help" for o in options if o not in known | HIDDEN]
    assert not wrong, "\n".join(wrong)


# Options of other programs that the README names in backticks (mpirun, pip, pkg-config, chromium).
FOREIGN = {"--allow-run-as-root", "--oversubscribe", "--config-settings", "--prefix", "--static", "--dump-dom",
           "--enable-logging", "--screenshot"}


def test_readme_prose_options_exist():
    """Every `--option` the prose names (e.g. `--refine N`) is an option of some recalign command."""
    if not os.access(synth_binary(), os.X_OK):
        pytest.skip(f"recalign-synth not built at {synth_binary()}")
    known = set(help_options(synth_binary()))
    for command in ("align", "spectrum", "tradeoff", "denoise", "project", "figures", "merge", "info"):
        known |= help_options(cli_common.RECALIGN, command)
    text = open(README, encoding="utf-8").read()
    named = set(re.findall(r"`(--[a-z][a-z0-9-]*)", text))
    assert len(named) > 20  # the pattern finds them
    assert not named - known - HIDDEN - FOREIGN, sorted(named - known - HIDDEN - FOREIGN)
