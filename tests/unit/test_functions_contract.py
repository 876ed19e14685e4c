"""The Functions' contract as the brain applies it: the idempotency key it sends and the action doc id."""

from __future__ import annotations

from studio_brain.adapters.connectors.functions.contract import action_doc_id, function_key, is_staff


def test_a_safe_key_is_sent_as_it_is_and_an_unsafe_one_as_a_digest_so_two_keys_never_become_one() -> None:
    gateway_key = "prop-" + "a" * 40
    assert function_key(gateway_key) == gateway_key
    # the Function strips characters outside [A-Za-z0-9_-]: "a.b-key-1" and "ab-key-1" would be one doc
    assert action_doc_id("proposal-1", "a.b-key-1") == action_doc_id("proposal-1", "ab-key-1")
    assert function_key("a.b-key-1") != function_key("ab-key-1")
    assert function_key("short") != "short"  # shorter than the Function's 8
    long = "k" * 100  # the Function cuts at 80: keys differing after it would collide
    assert function_key(long) != function_key(long + "x")
    assert 8 <= len(function_key(long)) <= 80


def test_the_staff_check_is_the_functions_require_admin() -> None:
    assert is_staff({"staff": True})
    assert is_staff({"roles": ["staff"]})
    assert not is_staff({"staff": "true"})
    assert not is_staff({"roles": "staff"})
    assert not is_staff({"admin": True})
