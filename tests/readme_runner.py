"""Run the ```python blocks of a Markdown file in order, in one namespace.

Run: python tests/readme_runner.py README.md

Each block runs as printed; the first line ``# needs: cuda`` (a comma-separated
list of :data:`NEEDS`) marks a block that needs what CI lacks: it is skipped,
visibly, where that is missing. One line per block goes to stdout after what the
block printed (``readme: block 2 (README.md line 80): ok in 9.8 s``); a block
that raises ends the run with exit status 1 after its traceback (on stderr), and
a malformed ``# needs:`` line with 2.
Only the standard library is imported here, so the blocks see a fresh interpreter.
"""

from __future__ import annotations

import re
import sys
import time
import traceback
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple, Tuple

REPORT = "readme: "  # starts each line of the runner's own report
FENCE = re.compile(r"^```python\s*$")
NEEDS_LINE = re.compile(r"^#\s*needs:\s*(.*)$")


def _has_cuda() -> bool:
    import torch
    return torch.cuda.is_available()


#: what a block may need, and how to tell whether it is here
NEEDS: Dict[str, Callable[[], bool]] = {"cuda": _has_cuda}


class Block(NamedTuple):
    number: int  # 1 for the first ```python block
    line: int  # where its code starts in the file (1-based)
    source: str
    needs: Tuple[str, ...]


class MarkerError(Exception):
    """A ``# needs:`` line that names nothing, or something not in :data:`NEEDS`."""


def _needs(source: str, where: str) -> Tuple[str, ...]:
    first = source.split("\n", 1)[0].strip()
    match = NEEDS_LINE.match(first)
    if not match:
        return ()
    needs = tuple(n.strip() for n in match.group(1).split(",") if n.strip())
    unknown = [n for n in needs if n not in NEEDS]
    if not needs or unknown:
        raise MarkerError(f"{where}: '# needs:' names {', '.join(unknown) or 'nothing'}; "
                          f"a block may need {', '.join(sorted(NEEDS))}")
    return needs


def python_blocks(text: str, name: str = "README.md") -> List[Block]:
    """The ```python blocks of Markdown ``text``, in order."""
    blocks: List[Block] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        if FENCE.match(lines[i]):
            start = i + 1
            end = start
            while end < len(lines) and lines[end].rstrip() != "```":
                end += 1
            if end == len(lines):
                raise MarkerError(f"{name} line {i + 1}: a ```python block is never closed")
            source = "\n".join(lines[start:end]) + "\n"
            number = len(blocks) + 1
            where = f"block {number} ({name} line {start + 1})"
            blocks.append(Block(number, start + 1, source, _needs(source, where)))
            i = end
        i += 1
    return blocks


def run_blocks(blocks: List[Block], path: Path) -> int:
    """Execute ``blocks`` in one namespace; the exit status (see the module docstring).
    Tracebacks name the Markdown file and its line numbers."""
    namespace: dict = {"__name__": "__main__"}
    for block in blocks:
        where = f"block {block.number} ({path.name} line {block.line})"
        missing = [need for need in block.needs if not NEEDS[need]()]
        if missing:
            print(f"{REPORT}{where}: skipped (needs: {', '.join(missing)})", flush=True)
            continue
        began = time.perf_counter()
        try:
            code = "\n" * (block.line - 1) + block.source  # the file's line numbers
            exec(compile(code, str(path), "exec"), namespace)
        except BaseException:
            traceback.print_exc()
            print(f"{REPORT}{where}: failed", flush=True)
            return 1
        print(f"{REPORT}{where}: ok in {time.perf_counter() - began:.1f} s", flush=True)
    return 0


def main(argv: List[str]) -> int:
    path = Path(argv[0]).resolve()
    try:
        blocks = python_blocks(path.read_text(encoding="utf-8"), path.name)
    except MarkerError as error:
        print(error, file=sys.stderr)
        return 2
    return run_blocks(blocks, path)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
