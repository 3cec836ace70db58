#!/usr/bin/env python3
"""Check the project's documentation (README.md and docs/*.md), standard library only.

Fails (exit status 1, one line per problem) when:
- README.md is longer than 200 lines: it is the front door, the reference lives in docs/;
- a relative link does not resolve: the file or directory is missing, or a `#anchor` names no
  heading of the target file (GitHub's heading ids: lower case, punctuation dropped, spaces
  to hyphens, `-1`, `-2` ... for repeats);
- two files hold the same table rows: at least two data rows of a table in one file appear,
  after normalising case and spaces, in a table of another file. Each fact has one place; the
  other page links to it.

Usage: python3 scripts/check-docs.py [ROOT]   (ROOT defaults to the repository root)
"""
import re
import sys
import unicodedata
from pathlib import Path
from urllib.parse import unquote

README_MAX_LINES = 200
MIN_SHARED_ROWS = 2

FENCE = re.compile(r"^\s{0,3}(```|~~~)")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ID = re.compile(r"<a\s[^>]*(?:name|id)=\"([^\"]+)\"", re.IGNORECASE)
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
# [text](target "title") and ![alt](target); the text may hold one level of brackets.
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def prose_lines(text):
    """(line number, line) of every line outside fenced code blocks."""
    fence = None
    for number, line in enumerate(text.splitlines(), start=1):
        match = FENCE.match(line)
        if match:
            if fence is None:
                fence = match.group(1)
            elif match.group(1) == fence:
                fence = None
            continue
        if fence is None:
            yield number, line


def heading_text(raw):
    """The heading as GitHub renders it: code, link and emphasis markup gone."""
    text = INLINE_CODE.sub(lambda m: m.group(2), raw)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text)
    return re.sub(r"(\*+|(?<!\w)_+|_+(?!\w))", "", text)


def slug(text):
    """GitHub's id for a heading (github-slugger): keep letters, marks, digits, connector
    punctuation, spaces and hyphens; lower case; spaces become hyphens."""
    kept = []
    for char in heading_text(text).strip().lower():
        category = unicodedata.category(char)
        if char in " -" or category[0] in "LMN" or category == "Pc":
            kept.append(char)
    return "".join(kept).replace(" ", "-")


def anchors(text):
    """Every anchor a link into this file may name."""
    found, seen = set(), {}
    for _, line in prose_lines(text):
        found.update(HTML_ID.findall(line))
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(text):
    """(line number, target) of every link outside code."""
    for number, line in prose_lines(text):
        definition = REFERENCE_DEF.match(line)
        if definition:
            yield number, definition.group(1).strip("<>")
            continue
        for match in INLINE_LINK.finditer(INLINE_CODE.sub("", line)):
            yield number, match.group(1).strip("<>")


def check_links(path, text, root, anchor_cache):
    problems = []
    for number, target in links(text):
        if not target or SCHEME.match(target) or target.startswith("//"):
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / unquote(file_part)).resolve() if file_part else path
        where = f"{path.relative_to(root)}:{number}"
        if not resolved.exists():
            problems.append(f"{where}: link to {target}: no such file")
            continue
        if not anchor:
            continue
        if resolved.is_dir() or resolved.suffix.lower() != ".md":
            problems.append(f"{where}: link to {target}: an anchor into something that is not a markdown file")
            continue
        if resolved not in anchor_cache:
            anchor_cache[resolved] = anchors(resolved.read_text(encoding="utf-8"))
        if unquote(anchor).lower() not in anchor_cache[resolved]:
            problems.append(f"{where}: link to {target}: no heading with the id '{anchor}' in {resolved.name}")
    return problems


def split_row(line):
    cells = re.split(r"(?<!\\)\|", line.strip())
    if cells and cells[0].strip() == "":
        cells = cells[1:]
    if cells and cells[-1].strip() == "":
        cells = cells[:-1]
    return cells


def normalise(line):
    return " | ".join(" ".join(cell.split()).lower() for cell in split_row(line))


def tables(text):
    """Each table as a list of (line number, normalised data row)."""
    lines = list(prose_lines(text))
    found, i = [], 0
    while i + 1 < len(lines):
        (_, header), (next_number, separator) = lines[i], lines[i + 1]
        consecutive = next_number == lines[i][0] + 1
        if "|" in header and consecutive and TABLE_SEPARATOR.match(separator) and "-" in separator:
            rows, j = [], i + 2
            while j < len(lines) and lines[j][0] == lines[j - 1][0] + 1 and "|" in lines[j][1]:
                row = normalise(lines[j][1])
                if row.replace("|", "").strip():
                    rows.append((lines[j][0], row))
                j += 1
            found.append(rows)
            i = j
        else:
            i += 1
    return found


def check_tables(documents, root):
    """Tables whose rows also make up (2+ rows) part of a table in another file."""
    rows_by_file = {
        path: {row for table in tables(text) for _, row in table} for path, text in documents.items()
    }
    problems = []
    for path, text in documents.items():
        for table in tables(text):
            for other, rows in rows_by_file.items():
                if other == path:
                    continue
                shared = [(number, row) for number, row in table if row in rows]
                if len(shared) >= MIN_SHARED_ROWS:
                    first = shared[0][0]
                    problems.append(
                        f"{path.relative_to(root)}:{first}: {len(shared)} rows of this table are also in "
                        f"{other.relative_to(root)} (keep the table in one file and link to it)"
                    )
    return problems


def main(argv):
    root = Path(argv[1] if len(argv) > 1 else Path(__file__).resolve().parent.parent).resolve()
    readme = root / "README.md"
    paths = [readme] + sorted((root / "docs").glob("*.md"))
    documents = {path: path.read_text(encoding="utf-8") for path in paths if path.exists()}
    problems = []
    if readme not in documents:
        problems.append("README.md: missing")
    elif len(documents[readme].splitlines()) > README_MAX_LINES:
        problems.append(
            f"README.md: {len(documents[readme].splitlines())} lines, more than {README_MAX_LINES}: "
            "move the reference into docs/ and link to it"
        )
    anchor_cache = {path: anchors(text) for path, text in documents.items()}
    link_count = 0
    for path, text in documents.items():
        link_count += sum(1 for _ in links(text))
        problems.extend(check_links(path, text, root, anchor_cache))
    problems.extend(check_tables(documents, root))
    for problem in problems:
        print(f"check-docs: {problem}", file=sys.stderr)
    if problems:
        return 1
    table_count = sum(len(tables(text)) for text in documents.values())
    print(f"check-docs: {len(documents)} files, {link_count} links, {table_count} tables: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
