"""docs/configuration.md is generated from the settings and stays in step with them."""

from pathlib import Path

from studio_brain.settings import Settings, reference_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_setting_explains_itself() -> None:
    undocumented = [name for name, info in Settings.model_fields.items() if not info.description]
    assert undocumented == []


def test_the_configuration_reference_in_docs_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == reference_markdown(), (
        "docs/configuration.md is stale: run `studio-brain config reference > docs/configuration.md`"
    )
