"""The Apprise adapter keeps target URLs to itself: masked display, scrubbed errors, a clear refusal of a
bad entry, and ``config show`` printing names and schemes only."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from studio_brain.adapters.notify_apprise import AppriseNotifier, parse_targets
from studio_brain.domain.errors import ConfigError, StudioBrainError
from studio_brain.settings import load_settings

TOKEN = "123456789:AAbbCCddEEffGGhhIIjjKK"


def test_targets_parse_as_whitespace_separated_named_urls() -> None:
    text = "staff=mailtos://u:pw@mail.example.com?to=a@b.c,d@e.f  owner=ntfy://tk@ntfy.sh/studio"
    assert parse_targets(text) == {
        "staff": "mailtos://u:pw@mail.example.com?to=a@b.c,d@e.f",
        "owner": "ntfy://tk@ntfy.sh/studio",
    }


@pytest.mark.parametrize(
    "text", ["mailto://x@y", "st!aff=mailto://x@y", "a=not-a-url", "a=json://h a=json://i"]
)
def test_a_bad_target_entry_is_refused_without_echoing_the_url(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_targets(text)
    assert "STUDIO_BRAIN_NOTIFY_TARGETS" in caught.value.message
    assert "x@y" not in caught.value.message


def test_an_unknown_scheme_is_refused_naming_the_target_only() -> None:
    with pytest.raises(ConfigError, match="target 'pager' is not a URL Apprise understands") as caught:
        AppriseNotifier({"pager": SecretStr("bogus://secret-value-123@host")})
    assert "secret-value-123" not in caught.value.message


def test_the_display_of_a_target_masks_its_secrets() -> None:
    notifier = AppriseNotifier(
        {
            "hook": SecretStr("json://brain:hook-pw-7f3a9c21@127.0.0.1:8080/hook?token=qs-secret-99"),
            "tg": SecretStr(f"tgram://{TOKEN}/987654"),
            "mail": SecretStr("mailtos://alerts:app-pass-4242@smtp.example.com?to=staff@example.com"),
        }
    )
    shown = {name: notifier.display(name) for name in notifier.targets()}
    assert shown["hook"].startswith("json://brain:")
    for secret in ("hook-pw-7f3a9c21", "qs-secret-99", TOKEN, "AAbbCCddEEffGGhhIIjjKK", "app-pass-4242"):
        assert all(secret not in value for value in shown.values()), secret
    assert repr(notifier) == "<AppriseNotifier targets=['hook', 'mail', 'tg']>"


async def test_a_failed_delivery_explains_itself_without_any_part_of_the_url(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    notifier = AppriseNotifier(
        {"hook": SecretStr("json://brain:hook-pw-7f3a9c21@127.0.0.1:9/path-secret-abc")}
    )
    with pytest.raises(StudioBrainError) as caught:
        await notifier.send("hook", title="t", body="b")
    assert caught.value.message.startswith("hook: delivery failed")
    assert "hook-pw-7f3a9c21" not in caught.value.message
    assert "path-secret-abc" not in caught.value.message
    out, err = capfd.readouterr()
    for text in (out, err, caplog.text):
        assert "hook-pw-7f3a9c21" not in text
        assert "path-secret-abc" not in text


def test_config_show_prints_target_names_and_schemes_only() -> None:
    settings = load_settings(
        notify_targets=f"ops=json://brain:hook-pw-7f3a9c21@127.0.0.1/x tg=tgram://{TOKEN}/1"
    )
    shown = settings.redacted()["STUDIO_BRAIN_NOTIFY_TARGETS"]
    assert shown == "ops=json://*** tg=tgram://***"


@pytest.mark.parametrize(
    ("name", "value", "variable"),
    [
        ("studio_hours", "mon-fri 9-5", "STUDIO_BRAIN_STUDIO_HOURS"),
        ("notify_routes", "urgent=*", "STUDIO_BRAIN_NOTIFY_ROUTES"),
        ("notify_quiet_hours", "late", "STUDIO_BRAIN_NOTIFY_QUIET_HOURS"),
        ("schedule_safety_watch", "sometimes", "STUDIO_BRAIN_SCHEDULE_SAFETY_WATCH"),
        ("schedule_morning_brief", "daily 7am", "STUDIO_BRAIN_SCHEDULE_MORNING_BRIEF"),
    ],
)
def test_a_bad_safety_or_notify_setting_stops_start_up_naming_the_variable(
    name: str, value: str, variable: str
) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_settings(**{name: value})
