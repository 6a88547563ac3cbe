"""The README stands alone: its shell commands refer only to things in the repository (or made by
an earlier command), run the venv's programs by their path, and stop nothing the user did not start."""

import re
import shlex
from pathlib import Path

import pytest

from desksim.cli import build_parser
from scenarios import bundled
from scenarios.reference import topics

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
VENV_PROGRAMS = {"desksim", "python", "ray", "lint-imports", "ruff", "mypy"}
PLACEHOLDERS = re.compile(r"^[A-Z_]+(:\d+)?$")  # HEAD_IP, HEAD_IP:6379


def shell_commands(text: str) -> list[str]:
    """Lines of the README's plain code blocks (``` with no language or sh), comments removed."""
    commands: list[str] = []
    fence = None
    for line in text.splitlines():
        if line.startswith("```"):
            fence = None if fence is not None else line[3:].strip()
            continue
        if fence in ("", "sh", "bash", "shell"):
            command = re.split(r"\s+#\s", line, maxsplit=1)[0].strip()
            if command and not command.startswith("#"):
                commands.append(command)
    return commands


def _options(command: str) -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return {opt for action in sub.choices[command]._actions for opt in action.option_strings}


def problems_of(command: str, made: set[str]) -> list[str]:
    """What in ``command`` does not exist in a fresh clone (after the commands before it)."""
    words = shlex.split(command)
    out: list[str] = []
    for word in words:
        outside = word.startswith(("/", "~")) or ".." in word.split("/")
        if outside and word != "~/.ray/auth_token":
            out.append(f"{word}: outside the repository")
    program, args = words[0], words[1:]
    if program in ("pkill", "killall") or (program.endswith("ray") and args[:1] == ["stop"]):
        out.append("stops processes the user may not have started")
    if program == "export":
        return out
    if program == "make":
        targets = set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))
        out += [f"make {t}: no such target" for t in args if t not in targets]
        return out
    if not program.startswith(".venv/bin/"):
        return [*out, f"{program}: not a path in the repository (the venv's programs are .venv/bin/NAME)"]
    name = program.removeprefix(".venv/bin/")
    if name not in VENV_PROGRAMS:
        return [*out, f"{program}: not a program of the venv"]
    if name == "python":
        script = args[0]
        if not (ROOT / script).is_file():
            out.append(f"{script}: no such file")
    elif name == "desksim":
        sub, rest = args[0], args[1:]
        try:
            options = _options(sub)
        except KeyError:
            return [*out, f"desksim {sub}: no such command"]
        takes_value = {"--out", "--address", "--seed", "--runs", "--workers", "--port", "--scenario", "--profile"}
        i = 0
        while i < len(rest):
            word = rest[i]
            if word.startswith("-"):
                if word not in options:
                    out.append(f"desksim {sub} {word}: no such option")
                if word in takes_value and i + 1 < len(rest):
                    value = rest[i + 1]
                    if word == "--out":
                        made.add(value)
                    elif word == "--scenario" and not _scenario_exists(value, made):
                        out.append(f"{value}: no such scenario")
                    i += 1
            elif sub == "schema":
                if word not in topics():
                    out.append(f"desksim schema {word}: no such topic")
            elif not _scenario_exists(word, made):
                out.append(f"{word}: not a file, bundled scenario or earlier --out folder")
            i += 1
        if sub == "run" and "--out" not in rest:
            made.add(f"runs/{Path(rest[0]).stem}")
    elif name == "ray":
        if args[0] != "start":
            out.append(f"ray {args[0]}: only `ray start` belongs in the recipes")
        elif "--block" not in args:
            out.append("ray start without --block: the user could only stop it with `ray stop` (every Ray)")
    return out


def _scenario_exists(word: str, made: set[str]) -> bool:
    return word in made or word in bundled() or (ROOT / word).exists() or PLACEHOLDERS.match(word) is not None


def test_readme_commands_refer_only_to_what_exists():
    commands = shell_commands(README.read_text(encoding="utf-8"))
    assert any(c.startswith(".venv/bin/desksim run") for c in commands) and len(commands) > 10
    made: set[str] = set()
    found = {command: problems_of(command, made) for command in commands}
    assert not {c: p for c, p in found.items() if p}


def test_readme_links_stay_inside_the_repository():
    text = README.read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r"`(\.\./[^`]*)`", text)
    assert "docs/architecture.md" in links
    for link in links:
        if not link.startswith(("http://", "https://")):
            assert not link.startswith(("/", "..")), link
            assert (ROOT / link.split("#")[0]).exists(), link
    assert "DESIGN.md" not in text


@pytest.mark.parametrize(
    "command, expected",
    [
        ("ray start --head --port 6379", "not a path in the repository"),
        (".venv/bin/ray stop --force", "stops processes"),
        ("cat ../shared/DESIGN.md", "outside the repository"),
        (".venv/bin/desksim run nope.yaml", "not a file"),
        (".venv/bin/desksim run quick --speed 3", "no such option"),
        (".venv/bin/desksim frobnicate", "no such command"),
        (".venv/bin/python benchmarks/bench_nothing.py", "no such file"),
        ("make deploy", "no such target"),
        (".venv/bin/desksim schema whale", "no such topic"),
    ],
)
def test_the_checker_catches_what_a_fresh_clone_lacks(command, expected):
    assert any(expected in p for p in problems_of(command, set())), problems_of(command, set())
