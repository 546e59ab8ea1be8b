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
        # (line, text, scraped_date); text None marks a quarantined line, which keeps its place
        # so that the title/abstract pairing after it does not shift.
        content: list[tuple[int, str | None, str | None]] = []
        scraped_date: str | None = None
        expected = 1
        for number, _, line in decode_lines(source.read_bytes(), source, result):
            # decode_lines yields every line it did not quarantine, blank ones included.
            content.extend((missing, None, scraped_date) for missing in range(expected, number))
            expected = number + 1
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
        if result.quarantine and result.quarantine[-1]["line"] is None:
            return result  # the whole file was quarantined (binary, UTF-16)
        last_line = max((row["line"] for row in result.quarantine), default=0)
        content.extend((missing, None, scraped_date) for missing in range(expected, last_line + 1))

        index = 0
        while index < len(content):
            number, first, date = content[index]
            if first is not None and _looks_like_abstract(first):
                result.rows.append(make_row(source, number, self.name, text=first, scraped_date=date))
                index += 1
                continue
            second = content[index + 1] if index + 1 < len(content) else None
            text = second[1] if second is not None else ""
            if first is not None:  # a quarantined abstract leaves its title as a record of its own
                result.rows.append(
                    make_row(source, number, self.name, text=text or "", title=first, scraped_date=date)
                )
            elif second is not None and text is not None:  # a quarantined title: the abstract alone
                result.rows.append(make_row(source, second[0], self.name, text=text, scraped_date=date))
            index += 2
            result.spill()
        return result
