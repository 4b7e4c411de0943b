"""CSV import of contacts: real-world files in, a report of what happened out.

The file is read from disk (the handler spools the upload there), parsed as
it goes and written in batches, so memory stays bounded whatever its size.
The whole import runs in one transaction: it lands completely or not at all,
while each invalid row is skipped and reported with its line number.
"""

import asyncio
import csv
import io
import json
import logging
from dataclasses import dataclass, field
from typing import BinaryIO

from web.errors import InvalidInput
from web.repositories import contacts as contacts_repository
from web.repositories import segments as segments_repository
from web.validation import MAX_NAME_LENGTH, email_address

log = logging.getLogger(__name__)

BATCH_SIZE = 5000
# An import that creates at least this many contacts refreshes the planner's
# statistics of the contacts right after it commits. Autovacuum does it at
# its next round, by default within about a minute, and until then searches
# may scan every contact.
ANALYZE_AFTER_CREATED = 10_000
MAX_REPORTED_ERRORS = 1000
MAX_FIELD_LENGTH = 10_000
DELIMITERS = (",", ";", "\t")
COLUMN_ALIASES = {
    "email": "email", "e-mail": "email", "email address": "email", "email_address": "email",
    "name": "name", "full name": "name", "full_name": "name",
    "first_name": "first_name", "first name": "first_name", "firstname": "first_name",
    "last_name": "last_name", "last name": "last_name", "lastname": "last_name", "surname": "last_name",
}
csv.field_size_limit(MAX_FIELD_LENGTH)
# One encoder for every row: json.dumps with options builds a new one per call.
_encode_json = json.JSONEncoder(ensure_ascii=False).encode


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    skipped: int = 0
    errors: list[dict] = field(default_factory=list)
    errors_truncated: bool = False

    def skip(self, line: int, reason: str) -> None:
        self.skipped += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"line": line, "reason": reason})
        else:
            self.errors_truncated = True

    def as_dict(self) -> dict:
        return {
            "created": self.created,
            "updated": self.updated,
            "skipped": self.skipped,
            "errors": self.errors,
            "errors_truncated": self.errors_truncated,
        }


def _detect_delimiter(header_line: str) -> str:
    counts = {delimiter: header_line.count(delimiter) for delimiter in DELIMITERS}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _columns(header: list[str]) -> list[str]:
    """Map header cells to contact fields or attribute names; raise InvalidInput when unusable."""
    columns = []
    for position, cell in enumerate(header, start=1):
        name = cell.strip()
        if not name:
            columns.append("")  # an unnamed column is ignored
            continue
        columns.append(COLUMN_ALIASES.get(name.lower(), name))
    named = [column for column in columns if column]
    duplicates = sorted({column for column in named if named.count(column) > 1})
    if duplicates:
        raise InvalidInput(f"the header names {', '.join(duplicates)} more than once; rename the repeated columns")
    if "email" not in columns:
        raise InvalidInput(
            "the header row has no email column; the first line must name the columns, one of them 'email'"
        )
    return columns


def _text_stream(upload: BinaryIO) -> io.TextIOBase:
    # utf-8-sig drops a byte-order mark when there is one.
    return io.TextIOWrapper(upload, encoding="utf-8-sig", errors="strict", newline="")


class _RowReader:
    """Yields (line number, contact or error message) for each non-blank record."""

    def __init__(self, upload: BinaryIO):
        self._text = _text_stream(upload)
        header_line = self._text.readline()
        if not header_line.strip():
            raise InvalidInput("the file is empty; send a CSV file whose first line names the columns")
        delimiter = _detect_delimiter(header_line)
        header = next(csv.reader([header_line], delimiter=delimiter))
        self.columns = _columns(header)
        self._reader = csv.reader(self._text, delimiter=delimiter)

    def __iter__(self):
        previous_end = 1
        while True:
            try:
                record = next(self._reader)
            except StopIteration:
                return
            except csv.Error as error:
                line = previous_end + 1
                yield line, f"malformed CSV: {error}"
                previous_end = self._reader.line_num + 1
                continue
            line = previous_end + 1
            previous_end = self._reader.line_num + 1
            if not record or all(not cell.strip() for cell in record):
                continue
            yield line, self._contact(record)

    def _contact(self, record: list[str]) -> dict | str:
        if len(record) > len(self.columns) and any(cell.strip() for cell in record[len(self.columns):]):
            return f"the row has {len(record)} fields but the header names {len(self.columns)}"
        values = dict.fromkeys(("email", "name", "first_name", "last_name"), "")
        attributes = {}
        for column, cell in zip(self.columns, record):
            if not column:
                continue
            cell = cell.strip()
            if "\x00" in cell:
                return f"the {column} field contains a NUL character; remove it"
            if column in values:
                values[column] = cell
            elif cell:
                attributes[column] = cell
        if not values["email"]:
            return "the email field is empty"
        try:
            values["email"] = email_address(values["email"])
        except InvalidInput as error:
            return error.message
        for name_field in ("name", "first_name", "last_name"):
            if len(values[name_field]) > MAX_NAME_LENGTH:
                return f"{name_field} is longer than {MAX_NAME_LENGTH} characters"
        if not values["name"]:
            values["name"] = " ".join(part for part in (values["first_name"], values["last_name"]) if part)
        values["attributes"] = attributes
        return values


async def import_contacts(db, upload: BinaryIO, segment_id: int | None = None) -> ImportReport:
    """Import contacts from a CSV file; add them to `segment_id` when given.

    Raises InvalidInput (and imports nothing) when the file is not UTF-8,
    has no usable header, or names an unknown segment.
    """
    report = ImportReport()
    loop = asyncio.get_running_loop()
    async with db.transaction() as transaction:
        if segment_id is not None:
            await segments_repository.get(transaction, segment_id)
        writer = _BatchWriter(transaction, report, segment_id)
        try:
            # Parsing runs in a thread, so that it overlaps with the database
            # writing the previous batch.
            batches = await loop.run_in_executor(None, _BatchReader, upload, report)
            while (batch := await loop.run_in_executor(None, batches.next_batch)).size:
                await writer.write(batch)
        except UnicodeDecodeError:
            line, byte = await loop.run_in_executor(None, _first_invalid_utf8, upload)
            raise InvalidInput(
                f"the file is not valid UTF-8: line {line} has the byte 0x{byte:02X}, which UTF-8 does not allow "
                "there; save the file as UTF-8 (in Excel: CSV UTF-8) and import it again"
            ) from None
        finally:
            await writer.flush()
    log.info("imported contacts: %d created, %d updated, %d skipped, segment %s",
             report.created, report.updated, report.skipped, segment_id)
    if report.created >= ANALYZE_AFTER_CREATED:
        _in_background(contacts_repository.analyze(db), "refreshing the statistics of the contacts")
    return report


def _first_invalid_utf8(upload: BinaryIO) -> tuple[int, int]:
    """Return the number of the first line of the file that is not UTF-8, and its first byte that is not."""
    upload.seek(0)
    for number, line in enumerate(upload, start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as error:
            return number, line[error.start]
    raise AssertionError("called for a file that decodes as UTF-8")


# Tasks started by `_in_background`, kept until they end so that they are not garbage collected.
_background_tasks: set[asyncio.Task] = set()


async def finish_background_work(timeout: float) -> None:
    """Wait up to `timeout` seconds for the work started after imports, then cancel what is left."""
    if not _background_tasks:
        return
    _, unfinished = await asyncio.wait(set(_background_tasks), timeout=timeout)
    for task in unfinished:
        task.cancel()
    await asyncio.gather(*unfinished, return_exceptions=True)


def _in_background(work, doing: str) -> None:
    """Run the coroutine `work` after the response; log its failure, naming what it was `doing`."""
    task = asyncio.ensure_future(work)
    _background_tasks.add(task)

    def done(finished: asyncio.Task) -> None:
        _background_tasks.discard(finished)
        if finished.cancelled():
            log.warning("%s was cancelled because web is stopping", doing)
        elif finished.exception() is not None:
            log.error("%s failed: %r", doing, finished.exception())

    task.add_done_callback(done)


class _BatchReader:
    """Parses the file a batch of valid, distinct contacts at a time; reports the rows it skips."""

    def __init__(self, upload: BinaryIO, report: ImportReport):
        self._rows = iter(_RowReader(upload))
        self._report = report
        self._first_line_of: dict[str, int] = {}

    def next_batch(self) -> contacts_repository.UpsertBatch:
        """Return up to BATCH_SIZE contacts; an empty batch at the end of the file."""
        batch = []
        for line, contact in self._rows:
            if isinstance(contact, str):
                self._report.skip(line, contact)
                continue
            key = contact["email"].lower()
            if key in self._first_line_of:
                self._report.skip(line, f"duplicate of line {self._first_line_of[key]}"
                                        " (addresses are compared ignoring case)")
                continue
            self._first_line_of[key] = line
            # Encoded here, in the parsing thread, rather than on the event loop.
            contact["attributes"] = _encode_json(contact["attributes"])
            batch.append(contact)
            if len(batch) >= BATCH_SIZE:
                break
        return contacts_repository.prepare_upsert(batch)


class _BatchWriter:
    """Writes one batch while the next one is parsed.

    `write` starts a batch's statements and returns at once, after waiting
    for the batch before it: the connection runs one statement at a time,
    and the parser gets the time the database spends on the previous batch.
    """

    def __init__(self, transaction, report: ImportReport, segment_id: int | None):
        self._transaction = transaction
        self._report = report
        self._segment_id = segment_id
        self._running: asyncio.Task | None = None

    async def write(self, batch: contacts_repository.UpsertBatch) -> None:
        await self.flush()
        self._running = asyncio.ensure_future(self._write(batch))

    async def flush(self) -> None:
        """Wait for the batch in progress; re-raise its error."""
        running, self._running = self._running, None
        if running is not None:
            await running

    async def _write(self, batch: contacts_repository.UpsertBatch) -> None:
        created, updated = await contacts_repository.upsert_batch(self._transaction, batch, self._segment_id)
        self._report.created += created
        self._report.updated += updated
