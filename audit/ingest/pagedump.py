"""Raw page dumps of paper listings (``.txt``): a title line, then an abstract line.

Two layouts occur and both read the same way: title and abstract separated by blank lines, or
on consecutive lines. Page furniture (newsletter prompts, "Subscribe", "new", date headers) is
skipped, never a record; a date header dates the records after it (``scraped_date``).
"""

from __future__ import annotations

from audit.furniture import DATE_HEADER, is_furniture, strip_glued_furniture
from audit.ingest.base import FieldMap, Reader, ReadResult, SourceFile, decode_lines, make_row

#: A line this long that ends a sentence, where a title is expected, is an abstract whose
#: title is missing: it becomes a record of its own with an empty title.
TITLE_MAX_CHARS = 300


def _looks_like_abstract(line: str) -> bool:
    return len(line) > TITLE_MAX_CHARS and line.rstrip()[-1:] in ".!?)"


class PageDumpReader(Reader):
    name = "pagedump"
    suffixes = (".txt",)

    def read(self, source: SourceFile, fields: FieldMap) -> ReadResult:
        result = ReadResult()
        content: list[tuple[int, str, str | None]] = []  # (line, text, scraped_date)
        scraped_date: str | None = None
        for number, _, line in decode_lines(source.read_bytes(), source, result):
            stripped = line.strip()
            if not stripped:
                continue
            if is_furniture(stripped):
                result.furniture_lines += 1
                if DATE_HEADER.match(stripped):
                    scraped_date = stripped
                continue
            stripped, glued = strip_glued_furniture(stripped)
            if glued:
                result.furniture_lines += 1
            content.append((number, stripped, scraped_date))

        index = 0
        while index < len(content):
            number, first, date = content[index]
            if _looks_like_abstract(first):
                result.rows.append(make_row(source, number, self.name, text=first, scraped_date=date))
                index += 1
                continue
            text = content[index + 1][1] if index + 1 < len(content) else ""
            result.rows.append(make_row(source, number, self.name, text=text, title=first, scraped_date=date))
            index += 2
        return result
