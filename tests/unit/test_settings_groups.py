"""Settings groups: typed frozen views over the flat STUDIO_BRAIN_* variables, whose names do not change."""

from __future__ import annotations

import dataclasses

import pytest

from studio_brain.settings import load_settings


def test_a_group_reads_the_same_variables_as_the_flat_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_BRAIN_SWARM_OPS_BACKLOG_MIN_ACTIVE", "41")
    monkeypatch.setenv("STUDIO_BRAIN_SWARM_COOLDOWN_HOURS", "12.5")
    monkeypatch.setenv("STUDIO_BRAIN_NOTIFY_ATTEMPTS", "7")
    monkeypatch.setenv("STUDIO_BRAIN_SESSION_IDLE_MINUTES", "33")
    monkeypatch.setenv("STUDIO_BRAIN_SCHEDULE_SAFETY_WATCH", "every 7m")
    settings = load_settings()
    assert settings.swarm_ops.backlog_min_active == settings.swarm_ops_backlog_min_active == 41
    assert settings.swarm_ops.cooldown_hours == 12.5
    assert settings.notify.attempts == 7
    assert settings.sessions.session_idle_minutes == 33
    assert settings.schedules.safety_watch == "every 7m"


def test_every_field_of_a_group_mirrors_a_setting_of_the_same_meaning() -> None:
    settings = load_settings()
    for group, prefix in (
        (settings.swarm_ops, "swarm_ops_"),
        (settings.notify, "notify_"),
        (settings.schedules, "schedule_"),
    ):
        for field in dataclasses.fields(group):
            flat = prefix + field.name
            if field.name == "cooldown_hours":
                flat = "swarm_cooldown_hours"
            assert getattr(group, field.name) == getattr(settings, flat), flat
    for field in dataclasses.fields(settings.sessions):
        assert getattr(settings.sessions, field.name) == getattr(settings, field.name)


def test_a_group_is_frozen() -> None:
    group = load_settings().notify
    with pytest.raises(dataclasses.FrozenInstanceError):
        group.attempts = 1  # type: ignore[misc]
