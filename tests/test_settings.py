import base64
import os

import pytest

from shared.settings import DEFAULT_ACCOUNT_LOOKUP_URL, SettingsError, load_settings

KEY = base64.urlsafe_b64encode(os.urandom(32)).decode()


def test_defaults_match_the_contract() -> None:
    s = load_settings({})
    assert s.webjobs_storage == "UseDevelopmentStorage=true"
    assert s.storage_connection_string == "UseDevelopmentStorage=true"
    assert s.table_prefix == "vsts"
    assert s.account_lookup_url == DEFAULT_ACCOUNT_LOOKUP_URL
    assert s.oauth_token_url == "https://app.vssps.visualstudio.com/oauth2/token"
    assert s.allowed_origins == ()
    assert s.http_timeout == 10.0
    assert s.domain_check_schedule == "0 0 * * * *"
    assert s.subscription_check_schedule == "0 0 */6 * * *"
    assert s.reconcile_schedule == "0 30 * * * *"
    assert (s.domain_check_concurrency, s.domain_check_budget_seconds, s.secret_grace_seconds) == (8, 240.0, 86400)
    assert s.search_base_url is None


def test_storage_connection_falls_back_to_webjobs_storage() -> None:
    assert load_settings({"AzureWebJobsStorage": "A"}).storage_connection_string == "A"
    assert (
        load_settings({"AzureWebJobsStorage": "A", "STORAGE_CONNECTION_STRING": "B"}).storage_connection_string == "B"
    )


@pytest.mark.parametrize("name", ["SECRETS_KEY", "WEBHOOK_PUBLIC_URL", "ADO_CLIENT_SECRET"], ids=lambda n: n.lower())
def test_a_missing_required_setting_fails_at_first_use_naming_it(name: str) -> None:
    settings = load_settings({})  # loading does not fail: nothing has needed the setting yet
    attribute = {"SECRETS_KEY": "secrets_key", "WEBHOOK_PUBLIC_URL": "webhook_public_url"}.get(name, "client_secret")
    with pytest.raises(SettingsError, match=name):
        getattr(settings, attribute)


def test_required_settings_are_returned_when_set() -> None:
    s = load_settings({"SECRETS_KEY": KEY, "WEBHOOK_PUBLIC_URL": "https://x.example/api/vsts/issue-updated"})
    assert s.secrets_key == KEY
    assert s.webhook_public_url == "https://x.example/api/vsts/issue-updated"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SECRETS_KEY", "not-a-key"),
        ("TABLE_PREFIX", "bad-prefix"),
        ("TABLE_PREFIX", "1abc"),
        ("ADO_HTTP_TIMEOUT", "ten"),
        ("ADO_HTTP_TIMEOUT", "0"),
        ("DOMAIN_CHECK_CONCURRENCY", "0"),
        ("DOMAIN_CHECK_CONCURRENCY", "2.5"),
        ("DOMAIN_CHECK_BUDGET_SECONDS", "-1"),
        ("SECRET_GRACE_SECONDS", "soon"),
        ("DOMAIN_CHECK_SCHEDULE", "0 * * * *"),
        ("RECONCILE_SCHEDULE", "0 30 * * * * *"),
        ("ADO_ACCOUNT_LOOKUP_URL", "https://example.com/no-placeholder"),
        ("ADO_OAUTH_TOKEN_URL", "ftp://example.com/token"),
        ("ADO_ALLOWED_ORIGINS", "https://ok.example, https://has.a/path"),
        ("WEBHOOK_PUBLIC_URL", "not a url"),
    ],
)
def test_an_invalid_setting_fails_with_a_message_naming_it(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({name: value})


def test_allowed_origins_are_normalised() -> None:
    s = load_settings({"ADO_ALLOWED_ORIGINS": " https://ADO.Example.com/ ,http://127.0.0.1:8080,, "})
    assert s.allowed_origins == ("https://ado.example.com", "http://127.0.0.1:8080")


def test_secrets_do_not_show_in_repr() -> None:
    s = load_settings({"SECRETS_KEY": KEY, "ADO_CLIENT_SECRET": "client-secret-value"})
    assert KEY not in repr(s)
    assert "client-secret-value" not in repr(s)
