"""Versioned schema migrations, applied in order when web starts.

Each `NNNN_name.sql` file in this folder runs once, in its own transaction,
and is recorded in `schema_migrations`. A PostgreSQL advisory lock makes a
second web process wait while the first one migrates.
"""

import logging
import re
from pathlib import Path

import psycopg2

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent
# Any constant works, as long as no other code takes the same advisory lock.
ADVISORY_LOCK_ID = 0x706F73746D696C6C  # "postmill"
_FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migration_files() -> list[tuple[int, Path]]:
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise RuntimeError(f"migration file {path.name} must be named NNNN_name.sql")
        found.append((int(match.group(1)), path))
    return found


def migrate(database_url: str) -> list[int]:
    """Apply the migrations not applied yet; return their versions."""
    connection = psycopg2.connect(database_url)
    connection.autocommit = True
    applied_now = []
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_ID,))
            try:
                cursor.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                )
                cursor.execute("SELECT version FROM schema_migrations")
                applied = {row[0] for row in cursor.fetchall()}
                for version, path in migration_files():
                    if version in applied:
                        continue
                    log.info("applying migration %s", path.name)
                    cursor.execute("BEGIN")
                    try:
                        cursor.execute(path.read_text(encoding="utf-8"))
                        cursor.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                        cursor.execute("COMMIT")
                    except Exception:
                        cursor.execute("ROLLBACK")
                        raise
                    applied_now.append(version)
            finally:
                cursor.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_ID,))
    finally:
        connection.close()
    return applied_now
