"""A standing campaign of bad input, run as a user runs ``shareferry``: a child process per case
against the Files emulator.

Families: every numeric flag of ``copy``, ``sync``, ``make`` and ``jobs`` given 0, negatives,
NaN, infinities, huge values, fractions where a whole number is meant and things that are not
numbers (each refusal names the flag and its range); other bad flags and values; bad manifest
files for ``run -f`` (binary, not UTF-8, a directory, missing, empty, alias loops, a billion
laughs, deep nesting, a bad document among several); hostile names echoed in errors; and output
piped into a reader that leaves early (``| head -1``).

Each bad-input case must exit with its status (2 for bad input, unless said otherwise) and print
exactly one line on stderr, ``shareferry <command>: ...``, naming the problem, with no traceback
and no raw control character anywhere, and nothing on stdout; nothing lands in the share. Closed
pipes must end quietly, with the status the command would have had (0), and a transfer must
still land every file.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from azure.storage.fileshare import ShareClient, ShareServiceClient

from shareferry.emulator import EmulatorConfig, RunningEmulator
from tests.cli.test_copy_cli import account_sas, clean_environment, share_url, signature
from tests.support.trees import read_share, write_local

#: Anything that drives a terminal or breaks a line, but the newline that ends each line.
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
BATCH = 6  # children at once: enough to overlap start-up, few enough for a small machine
MEMORY_CAP = 512 * 1024 * 1024  # bytes of address space the bomb's child may use


@dataclass(frozen=True)
class Where:
    """The places a case can name."""

    tmp: Path
    source: str  # a local directory with a file in it
    files: str  # the share's URL with a SAS
    path_style: str  # the share's URL without a SAS or --from-to
    manifests: Path  # a directory of manifest files (see bad_manifests)


@dataclass(frozen=True)
class Case:
    args: Sequence[str]  # after ``shareferry``
    says: Sequence[str]  # what the one line on stderr must contain
    code: int = 2
    env: Mapping[str, str] = field(default_factory=dict)
    stdin: bytes = b""


Build = Callable[[Where], Case]


def copy(*flags: str, says: Sequence[str], code: int = 2) -> Build:
    return lambda w: Case(["copy", w.source, w.files, "--from-to", "LocalFile", *flags], says, code)


def sync(*flags: str, says: Sequence[str], code: int = 2) -> Build:
    return lambda w: Case(["sync", w.source, w.files, "--from-to", "LocalFile", *flags], says, code)


def run_f(name: str, *, says: Sequence[str], code: int = 2) -> Build:
    return lambda w: Case(["run", "-f", str(w.manifests / name)], says, code)


# ---- numeric flags -------------------------------------------------------------------------------

#: (command, flag, range phrase the refusal must hold, bad values)
NUMERIC: list[tuple[str, str, str, list[str]]] = [
    ("copy", "--block-size-mb", "a number of MiB from 0 to 4000 (0: the default, 8 MiB)",
     ["-1", "-0.5", "nan", "inf", "1e400", "5000", "4000.5", "1e-7", "0x10", "1_000", "", "4,5"]),
    ("copy", "--cap-mbps", "a number of megabits per second from 0 to 1000000 (0: no cap)",
     ["-1", "nan", "inf", "1e400", "1000001", "0x10", "fast"]),
    ("copy", "--shard-count", "a whole number from 1 to 1000",
     ["0", "-1", "1.5", "1001", "nan", "1e3", "99999999999999999999999999999999999999"]),
    ("copy", "--shard-index", "a whole number from 0 to",
     ["-1", "1.5", "nan", "1000", "first"]),
    ("sync", "--max-delete-percent", "a percentage from 0 to 100",
     ["-0.5", "101", "nan", "inf", "50%"]),
    ("sync", "--block-size-mb", "a number of MiB from 0 to 4000", ["-1", "nan", "4001"]),
    ("sync", "--cap-mbps", "a number of megabits per second from 0 to 1000000", ["-2", "inf"]),
    ("sync", "--shard-count", "a whole number from 1 to 1000", ["0", "2.5"]),
    ("make", "--quota-gb", "a whole number of GiB from 0 to 102400 (0: the service's default)",
     ["-1", "1.5", "102401", "nan", "1e3", "", "99999999999999999999999999999999"]),
    ("jobs show", "--max-failures", "a whole number from 0 to 1000000000 (0 lists none)",
     ["-1", "2.5", "nan", "1000000001", "99999999999999999999999999999999999", "all"]),
    ("jobs clean", "--older-than", "a number and a unit (s, m, h, d or w) from 0s to 36500d",
     ["99999999999d", "36501d", "5300w", "-1d", "7", "5x", "nan"]),
]  # fmt: skip


def numeric_case(command: str, flag: str, value: str, phrase: str) -> Build:
    says = [f"{flag} must be {phrase}"]
    # "-1d" would read as an option of its own: a user writes --flag=-1d (as here for every "-")
    given = [f"{flag}={value}"] if value.startswith("-") else [flag, value]
    if command == "copy":
        return copy(*given, says=says)
    if command == "sync":
        return sync(*given, says=says)
    if command == "make":
        return lambda w: Case(["make", w.path_style, "--kind", "file", *given], says)
    job = ["abcdef12"] if command == "jobs show" else []
    return lambda w: Case([*command.split(), *job, *given], says)


CASES: dict[str, Build] = {
    f"{command} {flag} {value!r}": numeric_case(command, flag, value, phrase)
    for command, flag, phrase, values in NUMERIC
    for value in values
}
CASES |= {
    "copy --shard-index 2 of --shard-count 2": copy(
        "--shard-index", "2", "--shard-count", "2",
        says=["--shard-index must be a whole number from 0 to 1 (one less than --shard-count 2), not 2"],
    ),
    "copy --block-size-mb 4.5 towards Azure Files": copy(
        "--block-size-mb", "4.5",
        says=["--block-size-mb must be a number of MiB from 0 to 4 (towards Azure Files, whose ranges are at most 4 MiB"],
    ),
    "sync --block-size-mb 8 towards Azure Files": sync(
        "--block-size-mb", "8", says=["--block-size-mb must be a number of MiB from 0 to 4 (towards Azure Files"]
    ),
    "SHAREFERRY_CONCURRENCY=0": lambda w: Case(
        ["copy", w.source, w.files, "--from-to", "LocalFile"], ["SHAREFERRY_CONCURRENCY must be 1 to 1000"],
        env={"SHAREFERRY_CONCURRENCY": "0"},
    ),
    "SHAREFERRY_CONCURRENCY=many": lambda w: Case(
        ["copy", w.source, w.files, "--from-to", "LocalFile"], ["SHAREFERRY_CONCURRENCY='many' is not a whole number"],
        env={"SHAREFERRY_CONCURRENCY": "many"},
    ),
}  # fmt: skip

# ---- other flags and values ----------------------------------------------------------------------

CASES |= {
    "copy --overwrite sometimes": copy("--overwrite", "sometimes", says=["--overwrite must be one of true, false"]),
    "copy --check-md5 Strict": copy("--check-md5", "Strict", says=["--check-md5 must be one of NoCheck"]),
    "copy --output-type xml": copy("--output-type", "xml", says=["--output-type must be one of text, json"]),
    "copy --from-to LocalS3": lambda w: Case(["copy", w.source, w.files, "--from-to", "LocalS3"], ["unknown --from-to 'LocalS3'"]),
    "copy --recursive=maybe": copy("--recursive=maybe", says=["--recursive takes true or false, not 'maybe'"]),
    "copy --include-regex [": copy("--include-regex", "[", says=["--include-regex '[' is not a valid regular expression"]),
    "copy --include-after yesterday": copy("--include-after", "yesterday", says=["--include-after 'yesterday' is not an ISO 8601"]),
    "copy --metadata novalue": copy("--metadata", "novalue", says=["--metadata entry 'novalue' is not NAME=VALUE"]),
    "copy an unknown flag": copy("--no-such-flag", says=["unrecognized arguments: --no-such-flag"]),
    "copy without a destination": lambda w: Case(["copy", w.source], ["the following arguments are required: DESTINATION"]),
    "copy local to local": lambda w: Case(["copy", w.source, str(w.tmp / "elsewhere")], ["from a local path to a local path"]),
    "copy from ftp://": lambda w: Case(["copy", "ftp://host/x", w.files], ["ftp:// URLs are not supported"]),
    "copy path-style without --from-to": lambda w: Case(["copy", w.source, w.path_style], ["pass --from-to"]),
    "copy --overwrite=prompt without a terminal": copy("--overwrite=prompt", says=["--overwrite=prompt needs a terminal"]),
    "sync --delete-destination maybe": sync("--delete-destination", "maybe", says=["--delete-destination must be one of"]),
    "sync --compare-hash SHA256": sync("--compare-hash", "SHA256", says=["--compare-hash must be one of None, MD5"]),
    "sync --overwrite false": sync("--overwrite", "false", says=["--overwrite does not apply to sync"]),
    "make a path-style URL without --kind": lambda w: Case(
        ["make", w.path_style], ["cannot tell whether", "is Files or Blob from its host: pass --kind file or --kind blob"]
    ),
    "make a path-style URL with a bad name, without --kind": lambda w: Case(
        ["make", w.path_style.rsplit("/", 1)[0] + "/s1"], ["pass --kind file or --kind blob"]
    ),
    "make a bad share name on a Files host": lambda w: Case(
        ["make", "https://acct.file.core.windows.net/s1"], ["share name 's1' must be 3-63 lower-case letters"]
    ),
    "make --kind nope": lambda w: Case(["make", w.path_style, "--kind", "nope"], ["--kind must be one of file, blob"]),
    "make ftp://": lambda w: Case(["make", "ftp://host/share"], ["is not a URL"]),
    "make --quota-gb on a blob container": lambda w: Case(
        ["make", "https://acct.blob.core.windows.net/box", "--quota-gb", "5"], ["--quota-gb applies to file shares only"]
    ),
    "jobs show an unknown job": lambda w: Case(["jobs", "show", "abcdef12"], ["no job abcdef12"], code=1),
    "jobs clean --status Bogus": lambda w: Case(["jobs", "clean", "--status", "Bogus"], ["--status must be one of"]),
    "run --pvc without a directory": lambda w: Case(
        ["run", "-f", str(w.manifests / "copyjob.yaml"), "--pvc", "nothing"], ["--pvc nothing: give CLAIM=DIR"]
    ),
    "run --output-type xml": lambda w: Case(
        ["run", "-f", str(w.manifests / "copyjob.yaml"), "--output-type", "xml"], ["--output-type must be one of"]
    ),
}  # fmt: skip

# ---- bad manifests -------------------------------------------------------------------------------

COPYJOB = {
    "apiVersion": "shareferry.dev/v1alpha1",
    "kind": "CopyJob",
    "metadata": {"name": "job"},
    "spec": {"source": {"pvc": {"claimName": "data"}}, "destination": {"fileShare": {"name": "dest"}}},
}
LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n"
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
)
MANIFESTS: dict[str, bytes] = {
    "copyjob.yaml": yaml.safe_dump(COPYJOB).encode(),
    "binary.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00",
    "latin1.yaml": "kind: CopyJob\nname: caf\xe9\n".encode("latin-1"),
    "utf16.yaml": "kind: CopyJob\n".encode("utf-16"),
    "empty.yaml": b"",
    "comments.yaml": b"# nothing here\n---\n# nor here\n",
    "loop.yaml": b"apiVersion: v1\nkind: Secret\nmetadata: &m\n  name: s\n  again: [*m]\n",
    "laughs.yaml": b"apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n"
    + LAUGHS.replace("a: &a", "x: &a").encode(),
    "deep-block.yaml": (
        "a:\n" + "".join(f"{'  ' * depth}b:\n" for depth in range(1, 150)) + "  " * 150 + "c: 1\n"
    ).encode(),
    "deep-flow.yaml": b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n",
    "bad-third.yaml": yaml.safe_dump(COPYJOB).encode() + b"---\nkind: x\n---\nkey: [unclosed\nnext: 1\n",
    "list-second.yaml": yaml.safe_dump(COPYJOB).encode() + b"---\n- a\n- b\n",
    "scalar.yaml": b"just some text\n",
    "no-kind.yaml": b"apiVersion: v1\nmetadata: {name: x}\n",
    "nul.yaml": b"kind: CopyJob\n\x00\n",
    "undefined-alias.yaml": b"kind: CopyJob\nmetadata: *nowhere\n",
    "configmap.yaml": b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    "two-copyjobs.yaml": yaml.safe_dump_all([COPYJOB, COPYJOB]).encode(),
    "a-directory": b"",  # made a directory below
}
CASES |= {
    "run -f a binary file": run_f("binary.png", says=["binary.png: not UTF-8 text (byte 0x89 at offset 0)"]),
    "run -f latin-1 text": run_f("latin1.yaml", says=["latin1.yaml: not UTF-8 text (byte 0xe9 at offset 23)"]),
    "run -f UTF-16 text": run_f("utf16.yaml", says=["utf16.yaml: not UTF-8 text"]),
    "run -f a directory": run_f("a-directory", says=["a-directory: is a directory"]),
    "run -f a missing file": run_f("missing.yaml", says=["missing.yaml: No such file or directory"]),
    "run -f an empty file": run_f("empty.yaml", says=["the manifests hold no CopyJob", "-f", "empty.yaml holds no manifest"]),
    "run -f comments only": run_f("comments.yaml", says=["comments.yaml holds no manifest (empty or only comments)"]),
    "run -f an alias loop": run_f("loop.yaml", says=["loop.yaml: document 1: the alias *m is inside the node &m", "alias loop"]),
    "run -f a billion laughs": run_f("laughs.yaml", says=["laughs.yaml: document 1 expands to more than 100000 values"]),
    "run -f deep block nesting": run_f("deep-block.yaml", says=["deep-block.yaml: document 1 nests deeper than 100 levels"]),
    "run -f deep flow nesting": run_f("deep-flow.yaml", says=["deep-flow.yaml: ", "nest", "deep"]),
    "run -f a bad third document": run_f(
        "bad-third.yaml", says=["bad-third.yaml: document 3 is not valid YAML", "(line 16, column 5)"]
    ),
    "run -f a list as second document": run_f(
        "list-second.yaml", says=["list-second.yaml (document 2): is a list, not a manifest"]
    ),
    "run -f a scalar": run_f("scalar.yaml", says=["scalar.yaml: is a single value (str), not a manifest"]),
    "run -f no kind": run_f("no-kind.yaml", says=["no-kind.yaml: has no kind: every manifest says what it is"]),
    "run -f a NUL character": run_f("nul.yaml", says=["nul.yaml: not valid YAML: character U+0000 at offset 14"]),
    "run -f an undefined alias": run_f("undefined-alias.yaml", says=["not valid YAML", "undefined alias"]),
    "run -f a ConfigMap": run_f("configmap.yaml", says=["v1/ConfigMap is not something shareferry run takes"]),
    "run -f two CopyJobs": run_f("two-copyjobs.yaml", says=["the manifests hold 2 CopyJobs"]),
    "run -f /dev/zero": lambda w: Case(["run", "-f", "/dev/zero"], ["-f /dev/zero: larger than 8 MiB"]),
    "run -f - with binary stdin": lambda w: Case(
        ["run", "-f", "-"], ["-f -: not UTF-8 text (byte 0xff at offset 0)"], stdin=b"\xff\xfe\x00\x01"
    ),
}  # fmt: skip

# ---- hostile names echoed in errors --------------------------------------------------------------

CASES |= {
    "copy from a missing source with an escape in its name": lambda w: Case(
        ["copy", str(w.tmp / "no\x1b]0;pwned\x07\nsuch"), w.files, "--from-to", "LocalFile"],
        [r"no\x1b]0;pwned\x07"],
    ),
    "run -f a missing file with an escape in its name": lambda w: Case(
        ["run", "-f", str(w.tmp / "evil\x1b[2J\r.yaml")], [r"evil\x1b[2J\r.yaml: No such file or directory"]
    ),
    "an unknown flag with an escape in it": copy("--evil\x1b[2J\u202e", says=[r"unrecognized arguments: --evil\x1b[2J\u202e"]),
    "an --overwrite value with an escape in it": copy("--overwrite", "\x1b[2J", says=["--overwrite must be one of", r"\x1b[2J"]),
    "jobs show an id with an escape in it": lambda w: Case(
        ["jobs", "show", "abcdef12\x1b[2J\x85"], [r"'abcdef12\x1b[2J\x85' is not a job id"]
    ),
    "make a URL with an escape in it": lambda w: Case(
        ["make", w.path_style.rsplit("/", 1)[0] + "/bad\x1b[2Jname"], [r"bad\x1b[2Jname"]
    ),
    "a --block-size-mb value with a newline in it": copy("--block-size-mb", "4\nFAILED: x", says=[r"not '4\nFAILED: x'"]),
}  # fmt: skip


@dataclass
class Campaign:
    results: dict[str, tuple[Case, subprocess.CompletedProcess[str]]]
    share: ShareClient
    sas: str


def run_all(
    cases: Mapping[str, Case], *, env: Mapping[str, str]
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every case as a child, :data:`BATCH` at a time; output decoded as strict UTF-8."""
    results: dict[str, subprocess.CompletedProcess[str]] = {}
    names = list(cases)
    for start in range(0, len(names), BATCH):
        running = {}
        for name in names[start : start + BATCH]:
            case = cases[name]
            process = subprocess.Popen(
                [sys.executable, "-m", "shareferry", *case.args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={**env, **case.env},
            )
            running[name] = (process, case.stdin)
        for name, (process, stdin) in running.items():
            out, err = process.communicate(stdin, timeout=120)
            results[name] = subprocess.CompletedProcess(
                process.args, process.returncode, out.decode("utf-8"), err.decode("utf-8")
            )
    return results


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Campaign]:
    tmp = tmp_path_factory.mktemp("campaign")
    write_local(tmp, {"src/a.txt": b"a"})
    manifests = tmp / "manifests"
    manifests.mkdir()
    for name, data in MANIFESTS.items():
        if name == "a-directory":
            (manifests / name).mkdir()
        else:
            (manifests / name).write_bytes(data)
    with RunningEmulator(EmulatorConfig()) as emulator:
        account = emulator.account()
        service = ShareServiceClient(
            emulator.account_url(), credential={"account_name": account.name, "account_key": account.key}
        )
        share = service.create_share("campaign")
        sas = account_sas(emulator)
        where = Where(
            tmp=tmp,
            source=str(tmp / "src"),
            files=share_url(emulator, share, "", sas),
            path_style=share_url(emulator, share, "", None),
            manifests=manifests,
        )
        cases = {name: build(where) for name, build in CASES.items()}
        env = clean_environment(SHAREFERRY_JOB_DIR=str(tmp / "jobs"))
        results = run_all(cases, env=env)
        yield Campaign({name: (cases[name], results[name]) for name in cases}, share, sas)


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_naming_the_problem(campaign: Campaign, name: str) -> None:
    case, result = campaign.results[name]
    printed = result.stdout + result.stderr
    assert "Traceback" not in printed, printed
    assert result.returncode == case.code, printed
    assert result.stdout == ""
    assert result.stderr.endswith("\n") and result.stderr.count("\n") == 1, result.stderr
    command = case.args[0] if case.args[0] != "jobs" else f"jobs {case.args[1]}"
    assert result.stderr.startswith(f"shareferry {command}: "), result.stderr
    for words in case.says:
        assert words in result.stderr, result.stderr
    assert not RAW.search(result.stderr.rstrip("\n")), result.stderr
    assert signature(campaign.sas) not in printed
    assert read_share(campaign.share).files == {}


def test_a_billion_laughs_is_refused_within_bounded_memory(tmp_path: Path) -> None:
    """Aliases nested ten deep (a billion values if expanded): refused before anything is built.

    The child runs with its address space capped at 512 MiB (``RLIMIT_AS``, set between fork and
    exec): expanding the bomb would need many GiB and end in a MemoryError, not this one line."""
    bomb = tmp_path / "bomb.yaml"
    ten_deep = LAUGHS + "j: &j [*i, *i, *i, *i, *i, *i, *i, *i, *i]\n"
    bomb.write_text(yaml.safe_dump(COPYJOB) + ten_deep.replace("a: &a", "x: &a"), encoding="utf-8")

    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))

    result = subprocess.run(
        [sys.executable, "-m", "shareferry", "run", "-f", str(bomb)],
        capture_output=True,
        text=True,
        env=clean_environment(),
        preexec_fn=cap_memory,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "expands to more than 100000 values" in result.stderr
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr


# ---- output piped into a reader that leaves early ------------------------------------------------


def closed_pipe_run(
    args: Sequence[str], *, env: Mapping[str, str], read_lines: int
) -> tuple[int, str, list[bytes]]:
    """Run ``shareferry`` with stdout a pipe that is closed after ``read_lines`` lines (0: closed
    before the child writes anything), as ``| head -N`` does. Returns the exit status, stderr
    and the lines read."""
    if read_lines == 0:
        read_end, write_end = os.pipe()
        os.close(read_end)
        process = subprocess.Popen(
            [sys.executable, "-m", "shareferry", *args],
            stdin=subprocess.DEVNULL,
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=dict(env),
        )
        os.close(write_end)
        _, err = process.communicate(timeout=120)
        return process.returncode, err.decode("utf-8"), []
    process = subprocess.Popen(
        [sys.executable, "-m", "shareferry", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env),
    )
    assert process.stdout is not None and process.stderr is not None
    lines = [process.stdout.readline() for _ in range(read_lines)]
    process.stdout.close()
    err = process.stderr.read().decode("utf-8")
    process.stderr.close()
    return process.wait(timeout=120), err, lines


@pytest.fixture
def pipe_share(emulator: RunningEmulator, share: ShareClient) -> tuple[RunningEmulator, ShareClient, str]:
    return emulator, share, account_sas(emulator)


#: A tree whose dry run prints far more than a pipe holds (about 250 KiB of DRYRUN lines).
WIDE = {f"wide/{'n' * 150}-{index:04d}.txt": b"x" for index in range(600)}


@pytest.mark.parametrize(
    ("command", "read_lines"),
    [("copy", 1), ("sync", 0)],
)
def test_a_dry_run_piped_into_head_ends_quietly(
    pipe_share: tuple[RunningEmulator, ShareClient, str], tmp_path: Path, command: str, read_lines: int
) -> None:
    emulator, share, sas = pipe_share
    write_local(tmp_path, WIDE)
    args = [
        command,
        str(tmp_path / "wide"),
        share_url(emulator, share, "", sas),
        "--from-to",
        "LocalFile",
        "--dry-run",
    ]
    if command == "copy":
        args.append("--recursive")
    status, err, lines = closed_pipe_run(args, env=clean_environment(), read_lines=read_lines)
    assert (status, err) == (0, "")
    assert all(line.startswith(b"DRYRUN: copy ") for line in lines)
    assert read_share(share).files == {}


@pytest.mark.parametrize("output_type", ["text", "json"])
@pytest.mark.parametrize("command", ["copy", "sync"])
def test_a_transfer_whose_reader_left_still_lands_every_file(
    pipe_share: tuple[RunningEmulator, ShareClient, str], tmp_path: Path, command: str, output_type: str
) -> None:
    """The reader leaves after the first line (JSON: ``Init``; text: before anything, as the
    text output prints only at the end); JSON ``Progress`` lines still come every 2 s while the
    capped transfer runs for about 3 s, so writes fail mid-job."""
    emulator, share, sas = pipe_share
    files = {f"src/file-{index:02d}.bin": os.urandom(20_000 + index) for index in range(40)}
    write_local(tmp_path, files)
    args = [
        command, str(tmp_path / "src"), share_url(emulator, share, "", sas), "--from-to", "LocalFile",
        "--output-type", output_type,
    ]  # fmt: skip
    if output_type == "json":
        args += ["--cap-mbps", "2"]
    if command == "copy":
        args.append("--recursive")
    status, err, lines = closed_pipe_run(
        args, env=clean_environment(), read_lines=1 if output_type == "json" else 0
    )
    assert (status, err) == (0, "")
    assert all(b'"MessageType":"Init"' in line for line in lines)
    prefix = "src/" if command == "copy" else ""
    expected = {prefix + path.removeprefix("src/"): data for path, data in files.items()}
    assert read_share(share).files == expected


@pytest.mark.parametrize(
    "args", [["jobs", "list"], ["jobs", "list", "--output-type", "json"], ["copy", "--help"]]
)
def test_jobs_list_and_help_piped_into_a_closed_pipe_end_quietly(
    pipe_share: tuple[RunningEmulator, ShareClient, str], tmp_path: Path, args: list[str]
) -> None:
    emulator, share, sas = pipe_share
    write_local(tmp_path, {"src/a.txt": b"a"})
    env = clean_environment(SHAREFERRY_JOB_DIR=str(tmp_path / "jobs"))
    made = subprocess.run(
        [sys.executable, "-m", "shareferry", "copy", str(tmp_path / "src" / "a.txt"),
         share_url(emulator, share, "", sas), "--from-to", "LocalFile"],
        capture_output=True, env=env, check=False, timeout=120,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    status, err, _ = closed_pipe_run(args, env=env, read_lines=0)
    assert (status, err) == (0, "")


def test_every_numeric_flag_takes_the_ends_of_its_range(
    pipe_share: tuple[RunningEmulator, ShareClient, str], service: ShareServiceClient, tmp_path: Path
) -> None:
    """The limits the refusals state are inclusive, and a block size above 4 MiB is fine where
    the destination is not Azure Files."""
    emulator, share, sas = pipe_share
    data = os.urandom(5 * 1024 * 1024 + 3)
    write_local(tmp_path, {"src/big.bin": data})
    env = clean_environment(SHAREFERRY_JOB_DIR=str(tmp_path / "jobs"))

    def shareferry(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "shareferry", *args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=120,
        )

    url = share_url(emulator, share, "", sas)
    up = shareferry(
        "copy", str(tmp_path / "src"), url, "--from-to", "LocalFile", "--recursive",
        "--block-size-mb", "4", "--cap-mbps", "1000000", "--shard-index", "0", "--shard-count", "1",
    )  # fmt: skip
    down = shareferry(
        "copy", share_url(emulator, share, "src", sas), str(tmp_path / "down"), "--from-to", "FileLocal",
        "--recursive", "--block-size-mb", "4.5",
    )  # fmt: skip
    synced = shareferry(
        "sync", str(tmp_path / "src"), share_url(emulator, share, "src", sas), "--from-to", "LocalFile",
        "--max-delete-percent", "100", "--block-size-mb", "0", "--cap-mbps", "0",
    )  # fmt: skip
    made = shareferry("make", f"{emulator.account_url()}/biggest?{sas}", "--kind", "file", "--quota-gb", "102400")  # fmt: skip
    shown = shareferry("jobs", "show", up.stdout.split("Job ")[1].split()[0], "--max-failures", "0")
    cleaned = shareferry("jobs", "clean", "--older-than", "36500d")
    for result in (up, down, synced, made, shown, cleaned):
        assert result.returncode == 0, [*result.args[3:], result.stderr]
    assert (tmp_path / "down" / "src" / "big.bin").read_bytes() == data
    assert service.get_share_client("biggest").get_share_properties().quota == 102400


def test_a_copy_started_with_stdout_closed_lands_every_file(
    pipe_share: tuple[RunningEmulator, ShareClient, str], tmp_path: Path
) -> None:
    """``shareferry copy ... >&-``: no standard output at all, from the start."""
    emulator, share, sas = pipe_share
    files = {f"src/file-{index}.bin": os.urandom(1000 + index) for index in range(5)}
    write_local(tmp_path, files)
    result = subprocess.run(
        [sys.executable, "-m", "shareferry", "copy", str(tmp_path / "src"), share_url(emulator, share, "", sas),
         "--from-to", "LocalFile", "--recursive"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        preexec_fn=lambda: os.close(1),
        env=clean_environment(), check=False, timeout=120,
    )  # fmt: skip
    assert (result.returncode, result.stderr) == (0, b"")
    assert read_share(share).files == files
