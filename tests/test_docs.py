"""The docs cannot rot: references to repository files and modules exist, README's commands run.

Checked in every committed markdown and Python file (docs, docstrings, comments):

* markdown links ``[text](target)`` (relative to the file; ``#anchor`` checked against the
  target's headings) point to a committed file or folder;
* paths that start with a committed top-level folder and end in a file extension or ``/``
  (``synth/scene.py``, ``docs/readme/*.md``, ``kitti/splits/``) name committed files (a glob must
  match one);
* bare upper-case ``NAME.md`` names (``PAPER.md``) are the name of a committed file;
* dotted names in backticks that start with a top-level package (``synth.render_dataset``,
  ``kitti.synthetic``) name an existing module and, after it, a name its source defines;
* every ``foresee …`` command line of README.md and docs/*.md names existing commands and
  options (click introspection, no run).

The slow test runs README's commands for real: ``foresee --help``, each command's ``--help``, and
a tiny ``foresee synth`` (twice: the second says ``cached``).
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import click
import pytest

REPO = Path(__file__).resolve().parents[1]

#: Pages other engineers write this round; README links them already. Remove an entry when its
#: page is merged (the lead: all of them at merge).
PENDING_PAGES = frozenset()

_EXTENSIONS = ("md", "py", "txt", "toml", "png", "json", "yml", "yaml", "csv", "cfg", "ini", "sh")
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_BARE_DOC = re.compile(r"(?<![\w/.-])([A-Z][A-Z0-9_]*\.md)\b")
_TICKED = re.compile(r"`{1,2}~?([A-Za-z_][\w.]*)`{1,2}")


@lru_cache(maxsize=1)
def committed_files() -> frozenset[str]:
    """Repository-relative posix paths of the committed files (a walk when git is unavailable)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
        files = {p for p in out.decode().split("\0") if p and (REPO / p).exists()}
        if files:
            return frozenset(files)
    except (OSError, subprocess.CalledProcessError):
        pass
    skip = {".git", ".venv", "work", "data", "__pycache__", ".pytest_cache", ".hypothesis"}
    files = set()
    for root, dirs, names in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in skip and not d.startswith(".")]
        rel = Path(root).relative_to(REPO).as_posix()
        files.update(n if rel == "." else f"{rel}/{n}" for n in names)
    return frozenset(files)


@lru_cache(maxsize=1)
def committed_dirs() -> frozenset[str]:
    dirs = set()
    for f in committed_files():
        parts = f.split("/")[:-1]
        dirs.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    return frozenset(dirs)


def _exists(rel: str) -> bool:
    rel = rel.rstrip("/")
    return rel in committed_files() or rel in committed_dirs()


def _text_files() -> list[str]:
    return sorted(f for f in committed_files() if f.endswith((".md", ".py")) and not f.startswith("tests/data/"))


def _slug(heading: str) -> str:
    """GitHub's anchor of a markdown heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(rel: str) -> set[str]:
    text = (REPO / rel).read_text(encoding="utf-8")
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", text, flags=re.M)}


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def link_problems(rel: str, text: str) -> list[str]:
    """Markdown links of file ``rel`` whose target is not committed (or whose anchor is missing)."""
    out = []
    base = posixpath.dirname(rel)
    for m in _LINK.finditer(text):
        target = m.group(1)
        if re.match(r"^[a-z]+:", target) or target.startswith("<"):
            continue  # http:, https:, mailto:, ...
        path, _, anchor = target.partition("#")
        resolved = posixpath.normpath(posixpath.join(base, path)) if path else rel
        where = f"{rel}:{_line_of(text, m.start())}"
        if resolved in PENDING_PAGES and not (REPO / resolved).exists():
            continue
        if not _exists(resolved):
            out.append(f"{where}: link to {target} ({resolved} is not a committed file)")
        elif anchor and resolved.endswith(".md") and anchor not in _anchors(resolved):
            out.append(f"{where}: link to {target}: no heading '#{anchor}' in {resolved}")
    return out


def path_problems(rel: str, text: str) -> list[str]:
    """Repository paths named in the text of ``rel`` that are not committed."""
    tops = sorted({f.split("/")[0] for f in committed_files() if "/" in f}, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w./<>-])((?:%s)/[\w./*-]*)" % "|".join(map(re.escape, tops)))
    out = []
    for m in pattern.finditer(text):
        token = m.group(1).rstrip(".,:;")
        after = text[m.end():m.end() + 1]
        if after in "<{" and after:  # a template path: pseudolidar/<key>, ImageSets/{train,val}.txt
            continue
        name = token.rstrip("/").rsplit("/", 1)[-1]
        if re.fullmatch(r"\d{6}\.\w+", name):  # a frame file of a data root or artifact, not the repo
            continue
        if not (token.endswith("/") or re.search(r"\.(%s)$" % "|".join(_EXTENSIONS), token)):
            continue
        if token in PENDING_PAGES:
            continue
        if "*" in token:
            if not any(fnmatch.fnmatch(f, token) for f in committed_files()):
                out.append(f"{rel}:{_line_of(text, m.start())}: {token} matches no committed file")
        elif not _exists(token):
            out.append(f"{rel}:{_line_of(text, m.start())}: {token} is not a committed file or folder")
    for m in _BARE_DOC.finditer(text):
        if not any(f.rsplit("/", 1)[-1] == m.group(1) for f in committed_files()):
            out.append(f"{rel}:{_line_of(text, m.start())}: {m.group(1)} is not in the repository")
    return out


def _module_source(parts: list[str]) -> tuple[str | None, int]:
    """(source text of the deepest module among ``parts``, how many parts it used)."""
    used, source = 0, None
    path = ""
    for i, part in enumerate(parts):
        path = f"{path}/{part}" if path else part
        if f"{path}/__init__.py" in committed_files():
            source, used = (REPO / f"{path}/__init__.py").read_text(encoding="utf-8"), i + 1
        elif f"{path}.py" in committed_files():
            return (REPO / f"{path}.py").read_text(encoding="utf-8"), i + 1
        else:
            break
    return source, used


def module_problems(rel: str, text: str) -> list[str]:
    """Dotted names in backticks that start with a package but name no module or definition."""
    packages = {d for d in committed_dirs() if "/" not in d and f"{d}/__init__.py" in committed_files()}
    out = []
    for m in _TICKED.finditer(text):
        parts = m.group(1).rstrip(".").split(".")
        if len(parts) < 2 or parts[0] not in packages or parts[-1] in _EXTENSIONS:
            continue
        source, used = _module_source(parts)
        if used == len(parts):
            continue
        name = parts[used]
        if source is None or not re.search(r"\b%s\b" % re.escape(name), source):
            module = ".".join(parts[:used])
            out.append(f"{rel}:{_line_of(text, m.start())}: `{m.group(1)}`: {module} has no {name}")
    return out


def test_pending_pages_are_still_pending():
    """A pending page that now exists must leave PENDING_PAGES (so its links are checked)."""
    landed = sorted(p for p in PENDING_PAGES if (REPO / p).exists())
    assert not landed, f"remove {landed} from PENDING_PAGES in tests/test_docs.py"


def test_committed_files_are_found():
    files = committed_files()
    assert "README.md" in files and "tests/test_docs.py" in files and "synth/scene.py" in files


def test_checks_catch_dangling_references():
    """The checkers flag what they should (constructed cases), and pass what exists."""
    assert link_problems("docs/x.md", "[a](paper.md) [b](../README.md#the-layout) [c](https://x.org/a.md)") == []
    assert len(link_problems("docs/x.md", "[a](readme/depth.md) [b](../README.md#no-such-heading)")) == 2
    assert path_problems("x.py", "see docs/paper.md and kitti/splits/ and synth/*.py, frames depth/000004.npz") == []
    bad = path_problems("x.py", "see docs/readme/depth.md, PAPER.md §5, kitti/synthetic/ and docs/readme/*.md")
    assert len(bad) == 4, bad
    assert module_problems("x.md", "``synth.render_dataset`` `depth.train.train_depth` `synth.json`") == []
    assert len(module_problems("x.md", "``kitti.synthetic`` and `synth.no_such_function`")) == 2
    good = "```\nforesee synth --out D \\\n    --seed 3  # a comment --not-an-option\n```\n`foresee cache ls`"
    assert readme_command_problems("x.md", good) == []
    bad = "```\nforesee synth --out D \\\n    --no-such-option 3\nforesee nosuch --x\n```\n`foresee depth trian`"
    assert len(readme_command_problems("x.md", bad)) == 3


def test_no_dangling_reference_in_docs_docstrings_and_comments():
    problems = []
    for rel in _text_files():
        text = (REPO / rel).read_text(encoding="utf-8")
        if rel.endswith(".md"):
            problems += link_problems(rel, text)
        # tests/test_docs.py holds constructed bad cases; CHANGELOG.md is history: it names paths
        # that were moved (and paths that other branches of the same release add)
        if rel not in ("tests/test_docs.py", "CHANGELOG.md"):
            problems += path_problems(rel, text)
            problems += module_problems(rel, text)
    assert not problems, "dangling references:\n" + "\n".join(problems)


def _command_lines(rel: str, text: str | None = None) -> list[tuple[int, str]]:
    """``foresee …`` command lines of a markdown file: in code blocks (with continuation lines)
    and in table cells / inline code."""
    lines = (text if text is not None else (REPO / rel).read_text(encoding="utf-8")).splitlines()
    out: list[tuple[int, str]] = []
    in_code = False
    for i, line in enumerate(lines, 1):
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            stripped = line.strip()
            if out and out[-1][0] == -i + 1 and (stripped.startswith(("--", "[--"))):
                # continuation of the previous command
                out[-1] = (-i, out[-1][1] + " " + stripped.split("#")[0].rstrip(" \\"))
                continue
            cmd = re.sub(r"^\$\s*", "", stripped).split("#")[0].rstrip(" \\")
            if cmd.startswith("foresee "):
                out.append((-i, cmd))
                continue
        for m in re.finditer(r"`(foresee [^`]+)`", line):
            out.append((i, m.group(1)))
    return [(abs(n), c) for n, c in out]


def _resolve(tokens: list[str]) -> tuple[click.Command, list[str]]:
    from pipeline.cli import main

    cmd: click.Command = main
    rest = tokens
    # a placeholder (COMMAND, …, REF) ends the command path
    while isinstance(cmd, click.Group) and rest and re.fullmatch(r"[a-z0-9][a-z0-9|-]*", rest[0]):
        names = rest[0].split("|")
        subs = [cmd.get_command(click.Context(cmd), n) for n in names]
        if any(s is None for s in subs):
            raise LookupError(f"no command {rest[0]!r} under {cmd.name!r}")
        cmd, rest = subs[0], rest[1:]
    return cmd, rest


def _options(cmd: click.Command) -> set[str]:
    opts = {"--help"}
    for p in cmd.params:
        opts.update(getattr(p, "opts", []))
        opts.update(getattr(p, "secondary_opts", []))
    return opts


def readme_command_problems(rel: str, text: str | None = None) -> list[str]:
    out = []
    for lineno, line in _command_lines(rel, text):
        tokens = [t for t in re.split(r"\s+", line.replace("[", " ").replace("]", " ").strip()) if t]
        try:
            cmd, rest = _resolve(tokens[1:])
        except LookupError as e:
            out.append(f"{rel}:{lineno}: {line}: {e}")
            continue
        known = _options(cmd)
        for t in rest:
            if t.startswith("--"):
                opt = t.split("=")[0].rstrip(".,;")
                if opt not in known:
                    out.append(f"{rel}:{lineno}: {line}: no option {opt} in `{cmd.name}`")
    return out


def test_readme_and_docs_commands_name_existing_commands_and_options():
    pages = ["README.md"] + sorted(f for f in committed_files() if f.startswith("docs/") and f.endswith(".md"))
    lines = _command_lines("README.md")
    assert len(lines) >= 15  # the CLI table and the examples are found at all
    problems = [p for rel in pages for p in readme_command_problems(rel)]
    assert not problems, "\n".join(problems)


def _readme_commands() -> list[list[str]]:
    """The command paths of README's CLI table (``synth``, ``depth train``, ``cache ls`` …)."""
    paths = []
    for _, line in _command_lines("README.md"):
        words = line.split()[1:]
        path = []
        for w in words:
            if w.startswith("-") or not re.fullmatch(r"[a-z0-9]+", w):
                break
            path.append(w)
        if path and path not in paths:
            paths.append(path)
    return paths


def _foresee(*args: str, cwd: Path = REPO, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.slow
def test_readme_commands_run(tmp_path):
    res = _foresee("--help")
    assert res.returncode == 0, res.stderr
    paths = _readme_commands()
    for path in paths:
        assert path[0] in res.stdout, f"`foresee {' '.join(path)}` is not in `foresee --help`"
        sub = _foresee(*path, "--help")
        assert sub.returncode == 0 and "Usage:" in sub.stdout, (path, sub.stderr)
    version = _foresee("--version")
    assert version.returncode == 0 and version.stdout.startswith("foresee, version ")
    out = tmp_path / "tiny"
    synth = ["synth", "--out", str(out), "--frames-train", "2", "--frames-val", "1", "--image-scale", "0.2",
             "--workers", "1", "--quiet"]
    first = _foresee(*synth)
    assert first.returncode == 0 and "synth: 3 frames" in first.stdout, first.stderr
    assert len(list((out / "training" / "image_2").glob("*.png"))) == 3
    second = _foresee(*synth)
    assert second.returncode == 0 and "cached" in second.stdout


# ---------------------------------------------------------------------------- headline figures
FIGURES = REPO / "docs" / "figures.json"


def _round_half_up(text: str, digits: int) -> str:
    from decimal import ROUND_HALF_UP, Decimal

    return str(Decimal(text).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def headline_problems(figures: dict, read) -> list[str]:
    """Every figure of docs/figures.json against its source and the pages that quote it.

    ``reproduce`` figures: the source row's last cell (``mean ± std``, as `make reproduce` wrote
    it) rounded half up to the quote's digits must be the quote. ``demo`` figures: the quote must
    appear in the source. Both: every page of ``quoted_in`` must hold the quote. ``read(rel)``
    gives a file's text.
    """
    out = []
    rep = figures["reproduce"]
    src = read(rep["source"]).splitlines()
    for fig in rep["figures"]:
        rows = [line for line in src if line.startswith(fig["row"])]
        if not rows:
            out.append(f"{rep['source']}: no row {fig['row']}")
            continue
        mean, _, std = rows[0].rstrip(" |").rsplit("|", 1)[1].strip().partition(" ± ")
        digits = len(fig["quote"].split(" ± ")[0].partition(".")[2])
        want = f"{_round_half_up(mean, digits)} ± {_round_half_up(std, digits)}"
        if want != fig["quote"]:
            out.append(f"docs/figures.json: {fig['row']} quotes {fig['quote']}, {rep['source']} says {mean} ± {std} = {want}")
    demo = figures["demo"]
    for fig in demo["figures"]:
        if fig["quote"] not in read(demo["source"]):
            out.append(f"{demo['source']}: does not hold {fig['what']} {fig['quote']}")
    for group in (rep, demo):
        for fig in group["figures"]:
            for page in fig["quoted_in"]:
                if fig["quote"] not in read(page):
                    out.append(f"{page}: does not quote {fig.get('row') or fig['what']} as {fig['quote']}")
    return out


def test_headline_figures_agree_with_their_source():
    import json

    figures = json.loads(FIGURES.read_text())
    assert len(figures["reproduce"]["figures"]) >= 8 and len(figures["demo"]["figures"]) >= 4
    problems = headline_problems(figures, lambda rel: (REPO / rel).read_text())
    assert not problems, "\n".join(problems)


def test_headline_check_catches_a_drifted_quote():
    import json

    figures = json.loads(FIGURES.read_text())
    texts = {rel: (REPO / rel).read_text() for rel in ("README.md", "docs/reproduce.md", "docs/reproduce-seeds.md",
                                                       "docs/performance.md")}
    assert headline_problems(figures, texts.__getitem__) == []
    # README quoting a stale mean (the first headline figure, its last digit changed), and a source
    # row (the first AP row) whose mean changed under an unchanged quote
    first = figures["reproduce"]["figures"][0]["quote"]
    stale_quote = first[:first.index(" ± ") - 1] + str((int(first[first.index(" ± ") - 1]) + 1) % 10) + \
        first[first.index(" ± "):]
    stale = dict(texts, **{"README.md": texts["README.md"].replace(first, stale_quote)})
    assert any("README.md: does not quote" in p for p in headline_problems(figures, stale.__getitem__))
    ap = next(f["row"] for f in figures["reproduce"]["figures"] if "AP_BEV" in f["row"])
    line = next(x for x in texts["docs/reproduce-seeds.md"].splitlines() if x.startswith(ap))
    mean, std = line.rsplit("|", 2)[1].strip().split(" ± ")
    shifted = f"{float(mean) + 0.1:.2f}"
    moved = dict(texts, **{"docs/reproduce-seeds.md": texts["docs/reproduce-seeds.md"].replace(
        line, line.replace(f"| {mean} ± {std} |", f"| {shifted} ± {std} |"))})
    assert any(f"says {shifted} ± {std}" in p for p in headline_problems(figures, moved.__getitem__))
