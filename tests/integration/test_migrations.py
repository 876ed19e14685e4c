"""Migrations take an empty database to head, match the models, and serialise when run concurrently; a
database already at head is recognised without loading Alembic."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest

from studio_brain.adapters.postgres.migrate import (
    check_models_match,
    current_revision,
    declared_head,
    head_revision,
    upgrade_to_head,
)

pytestmark = pytest.mark.postgres


def test_an_empty_database_migrates_to_head_and_matches_the_models(empty_database_url: str) -> None:
    assert current_revision(empty_database_url) is None
    before, after = upgrade_to_head(empty_database_url)
    assert (before, after) == (None, head_revision())
    check_models_match(empty_database_url)  # alembic check: raises when models and schema differ


def test_migrating_twice_changes_nothing(empty_database_url: str) -> None:
    upgrade_to_head(empty_database_url)
    before, after = upgrade_to_head(empty_database_url)
    assert before == after == head_revision()


def test_two_concurrent_migrations_leave_a_correct_schema(empty_database_url: str) -> None:
    script = (
        "import sys; from studio_brain.adapters.postgres.migrate import upgrade_to_head; "
        "upgrade_to_head(sys.argv[1])"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, empty_database_url], stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    assert current_revision(empty_database_url) == head_revision()
    check_models_match(empty_database_url)
    with psycopg.connect(empty_database_url) as conn:
        rows = conn.execute("SELECT count(*) FROM alembic_version").fetchone()
    assert rows == (1,)


def test_the_declared_head_is_alembics_head() -> None:
    # the shortcut below reads revisions from the files without Alembic; it must name the same head
    assert declared_head() == head_revision()


def test_a_database_at_head_is_left_without_loading_alembic(empty_database_url: str) -> None:
    upgrade_to_head(empty_database_url)
    script = (
        "import sys; from studio_brain.adapters.postgres.migrate import upgrade_to_head; "
        "print(upgrade_to_head(sys.argv[1])); print('alembic' in sys.modules, 'sqlalchemy' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, empty_database_url], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    head = head_revision()
    assert done.stdout.splitlines() == [str((head, head)), "False False"]


def test_a_database_behind_head_is_still_migrated_by_alembic(empty_database_url: str) -> None:
    from alembic import command

    from studio_brain.adapters.postgres.migrate import alembic_config

    command.upgrade(alembic_config(empty_database_url), "0014_mcp")
    before, after = upgrade_to_head(empty_database_url)
    assert (before, after) == ("0014_mcp", head_revision())
    check_models_match(empty_database_url)
