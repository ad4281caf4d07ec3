"""Read the Dockerfile and .dockerignore the way the builder does, enough to replay the build
stage's steps without a Docker engine: stages, instructions (continuations joined, comments
dropped), ENV assignments, COPY sources, and which context files .dockerignore lets through."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    arguments: str
    line: int


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [instruction for instruction in self.instructions if instruction.keyword == keyword]


def instructions(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile, continuation lines joined, comment lines dropped."""
    found: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction is dropped, as the builder does
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(line)
        keyword, _, arguments = " ".join(part for part in pending if part).partition(" ")
        found.append(Instruction(keyword.upper(), arguments.strip(), start))
        pending = []
    assert not pending, "the Dockerfile ends inside a continued instruction"
    return found


def stages(text: str) -> list[Stage]:
    """The build stages, in order (``FROM image [AS name]``)."""
    result: list[Stage] = []
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            words = instruction.arguments.split()
            name = words[2] if len(words) == 3 and words[1].lower() == "as" else None
            result.append(Stage(base=words[0], name=name))
        else:
            assert result, f"line {instruction.line}: {instruction.keyword} before any FROM"
            result[-1].instructions.append(instruction)
    return result


def env_assignments(instruction: Instruction) -> dict[str, str]:
    """``ENV A=1 B="two words"`` as a dict (the legacy ``ENV A 1`` form too)."""
    words = shlex.split(instruction.arguments)
    if words and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    return dict(word.split("=", 1) for word in words)


def json_or_words(arguments: str) -> list[str]:
    """The argument list of an exec-form (JSON array) or shell-form instruction."""
    text = arguments.strip()
    if text.startswith("["):
        value = json.loads(text)
        assert isinstance(value, list)
        return [str(item) for item in value]
    return shlex.split(text)


@dataclass(frozen=True)
class Copy:
    sources: list[str]
    destination: str
    flags: dict[str, str]


def copy_of(instruction: Instruction) -> Copy:
    words = json_or_words(instruction.arguments)
    flags = {}
    while words and words[0].startswith("--"):
        key, _, value = words.pop(0)[2:].partition("=")
        flags[key] = value
    return Copy(sources=words[:-1], destination=words[-1], flags=flags)


class DockerIgnore:
    """The rules of a .dockerignore: the last pattern matching a path (or one of its parents)
    decides, ``!`` patterns let a path back in."""

    def __init__(self, text: str) -> None:
        self.rules: list[tuple[bool, str]] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            include = line.startswith("!")
            pattern = line[1:] if include else line
            self.rules.append((include, pattern.strip("/")))

    @staticmethod
    def _matches(pattern: str, path: str) -> bool:
        parts = path.split("/")
        candidates = ["/".join(parts[: index + 1]) for index in range(len(parts))]
        if pattern.startswith("**/"):
            tail = pattern[3:]
            return any(
                fnmatch.fnmatchcase("/".join(parts[start : end + 1]), tail)
                for start in range(len(parts))
                for end in range(start, len(parts))
            )
        return any(fnmatch.fnmatchcase(candidate, pattern) for candidate in candidates)

    def excluded(self, path: str) -> bool:
        verdict = False
        for include, pattern in self.rules:
            if self._matches(pattern, path):
                verdict = not include
        return verdict


def copy_from_context(context: Path, ignore: DockerIgnore, copy: Copy, root: Path) -> None:
    """Replay one COPY from the build context into ``root`` (the image's ``/``): a directory's
    contents go into the destination, a file into it (destination ending with ``/``) or to it;
    what .dockerignore leaves out of the context is not there to copy."""
    destination = root / copy.destination.lstrip("/")
    into_directory = copy.destination.endswith("/") or len(copy.sources) > 1
    for source in copy.sources:
        path = context / source
        assert path.exists(), f"COPY {source}: not in the repository"
        assert not ignore.excluded(source), f"COPY {source}: .dockerignore leaves it out of the context"
        if path.is_dir():
            for item in sorted(path.rglob("*")):
                relative = item.relative_to(context).as_posix()
                if item.is_file() and not ignore.excluded(relative):
                    target = destination / item.relative_to(path)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(item, target)
        else:
            target = destination / path.name if into_directory else destination
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


#: An absolute path in a shell command (what a replay must map into its own root).
ABSOLUTE_PATH = re.compile(r"(?<![\w.$-])/[\w.@-]+(?:/[\w.@-]*)*")
