import base64
import os

import pytest

from shared.settings import DEFAULT_ACCOUNT_LOOKUP_URL, SettingsError, load_settings

KEY = base64.urlsafe_b64encode(os.urandom(32)).decode()


def test_defaults_match_the_contract() -> None:
    s = load_settings({})
    assert s.queue_storage.connection_string == "UseDevelopmentStorage=true"
    assert s.table_storage.connection_string == "UseDevelopmentStorage=true"
    assert s.table_prefix == "vsts"
    assert s.account_lookup_url == DEFAULT_ACCOUNT_LOOKUP_URL
    assert s.oauth_token_url == "https://app.vssps.visualstudio.com/oauth2/token"
    assert s.allowed_origins == ()
    assert s.http_timeout == 10.0
    assert s.schedule("DOMAIN_CHECK_SCHEDULE") == "0 0 * * * *"
    assert s.schedule("SUBSCRIPTION_CHECK_SCHEDULE") == "0 0 */6 * * *"
    assert s.schedule("RECONCILE_SCHEDULE") == "0 30 * * * *"
    assert s.schedule("SWEEP_SCHEDULE") == "0 */2 * * * *"
    assert (s.timer_concurrency, s.timer_budget_seconds, s.secret_grace_seconds) == (8, 240.0, 86400)
    assert s.search_base_url is None


def test_storage_connection_falls_back_to_webjobs_storage() -> None:
    assert load_settings({"AzureWebJobsStorage": "A"}).table_storage.connection_string == "A"
    assert (
        load_settings({"AzureWebJobsStorage": "A", "STORAGE_CONNECTION_STRING": "B"}).table_storage.connection_string
        == "B"
    )


@pytest.mark.parametrize("name", ["SECRETS_KEY", "WEBHOOK_PUBLIC_URL", "ADO_CLIENT_SECRET"], ids=lambda n: n.lower())
def test_a_missing_required_setting_fails_at_first_use_naming_it(name: str) -> None:
    settings = load_settings({})  # loading does not fail: nothing has needed the setting yet
    attribute = {"SECRETS_KEY": "secrets_key", "WEBHOOK_PUBLIC_URL": "webhook_public_url"}.get(name, "client_secret")
    with pytest.raises(SettingsError, match=name):
        settings.schedule(name) if attribute == "schedule" else getattr(settings, attribute)


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
        ("ADO_ACCOUNT_LOOKUP_URL", "https://example.com/no-placeholder"),
        ("ADO_OAUTH_TOKEN_URL", "ftp://example.com/token"),
        ("ADO_ALLOWED_ORIGINS", "https://ok.example, https://has.a/path"),
        ("WEBHOOK_PUBLIC_URL", "not a url"),
        ("AZURE_AUTHORITY_HOST", "http://login.example"),  # azure-identity takes only https
    ],
)
def test_an_invalid_setting_fails_with_a_message_naming_it(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({name: value})


@pytest.mark.parametrize(
    ("name", "value", "attribute"),
    [
        ("TIMER_CONCURRENCY", "0", "timer_concurrency"),
        ("DOMAIN_CHECK_CONCURRENCY", "2.5", "timer_concurrency"),
        ("TIMER_BUDGET_SECONDS", "-1", "timer_budget_seconds"),
        ("DOMAIN_CHECK_BUDGET_SECONDS", "4 min", "timer_budget_seconds"),
        ("SECRET_GRACE_SECONDS", "soon", "secret_grace_seconds"),
        ("DOMAIN_CHECK_SCHEDULE", "0 * * * *", "schedule"),
        ("SUBSCRIPTION_CHECK_SCHEDULE", "hourly", "schedule"),
        ("RECONCILE_SCHEDULE", "0 30 * * * * *", "schedule"),
        ("CLEANUP_SCHEDULE", "daily", "schedule"),
        ("SWEEP_SCHEDULE", "often", "schedule"),
        ("SWEEP_GRACE_SECONDS", "0", "sweep_grace_seconds"),
        ("SENTRY_RECONCILE_SCHEDULE", "hourly", "schedule"),
    ],
)
def test_a_setting_only_some_paths_use_fails_where_it_is_used(name: str, value: str, attribute: str) -> None:
    settings = load_settings({name: value})  # the webhook, lookups and admin routes load settings like this
    assert settings.table_prefix == "vsts"
    with pytest.raises(SettingsError, match=name):
        settings.schedule(name) if attribute == "schedule" else getattr(settings, attribute)


def test_the_timers_shared_settings_have_new_names_and_the_old_ones_still_work() -> None:
    old = {"DOMAIN_CHECK_CONCURRENCY": "3", "DOMAIN_CHECK_BUDGET_SECONDS": "90"}
    new = {"TIMER_CONCURRENCY": "5", "TIMER_BUDGET_SECONDS": "120"}
    assert (load_settings(old).timer_concurrency, load_settings(old).timer_budget_seconds) == (3, 90.0)
    assert (load_settings(new).timer_concurrency, load_settings(new).timer_budget_seconds) == (5, 120.0)
    both = load_settings({**old, **new})  # the new names win
    assert (both.timer_concurrency, both.timer_budget_seconds) == (5, 120.0)
    # A bad old value is ignored once the new name is set; a bad new value is reported under its own name.
    assert load_settings({"DOMAIN_CHECK_CONCURRENCY": "x", "TIMER_CONCURRENCY": "2"}).timer_concurrency == 2
    with pytest.raises(SettingsError, match="TIMER_CONCURRENCY"):
        _ = load_settings({"DOMAIN_CHECK_CONCURRENCY": "4", "TIMER_CONCURRENCY": "many"}).timer_concurrency


@pytest.mark.usefixtures("azurite")
def test_a_bad_timer_setting_leaves_the_webhook_and_admin_routes_working_and_fails_the_timer(env) -> None:
    import azure.functions as func

    from functions.admin_integrations import get
    from shared.jobs.domain_check import run_domain_check
    from tests.helpers import make_integration
    from tests.sync_helpers import SECRET, delivery, post, queued_messages

    def admin_get(integration_id: str) -> func.HttpResponse:
        url = f"http://localhost/api/vsts/integrations/{integration_id}"
        return get(func.HttpRequest("GET", url, route_params={"integration_id": integration_id}, body=b""))

    integration = make_integration(webhook_secret=SECRET)
    env.setenv("TIMER_CONCURRENCY", "eight")
    env.setenv("RECONCILE_SCHEDULE", "every hour")
    try:
        assert post(delivery(integration.id, 42, 3, state=("Active", "Resolved"))).status_code == 202
    finally:
        queued_messages()  # leave the queue empty for other tests
    assert admin_get(integration.id).status_code == 200
    with pytest.raises(SettingsError, match="TIMER_CONCURRENCY"):
        run_domain_check()
    # A setting the route does use still fails it, clearly: 503 naming the setting.
    env.setenv("TABLE_PREFIX", "bad-prefix")
    response = admin_get(integration.id)
    assert response.status_code == 503 and b"TABLE_PREFIX" in response.get_body()


def test_allowed_origins_are_normalised() -> None:
    s = load_settings({"ADO_ALLOWED_ORIGINS": " https://ADO.Example.com/ ,http://127.0.0.1:8080,, "})
    assert s.allowed_origins == ("https://ado.example.com", "http://127.0.0.1:8080")


def test_secrets_do_not_show_in_repr() -> None:
    s = load_settings({"SECRETS_KEY": KEY, "ADO_CLIENT_SECRET": "client-secret-value"})
    assert KEY not in repr(s)
    assert "client-secret-value" not in repr(s)


def test_connection_strings_show_without_their_keys() -> None:
    account_key = base64.b64encode(os.urandom(64)).decode()  # what a storage account key looks like
    sas = "sv=2022-11-02&ss=bqt&srt=sco&sp=rwdlacu&se=2030-01-01T00:00:00Z&sig=" + account_key[:43] + "%3D"
    s = load_settings(
        {
            "AzureWebJobsStorage": (
                f"DefaultEndpointsProtocol=https;AccountName=vstsapp;AccountKey={account_key};"
                "EndpointSuffix=core.windows.net"
            ),
            "STORAGE_CONNECTION_STRING": f"TableEndpoint=https://vstsapp.table.core.windows.net/;SharedAccessSignature={sas}",
            "SECRETS_KEY": KEY,
            "ADO_CLIENT_SECRET": "client-secret-value",
        }
    )
    for text in (repr(s), str(s), f"{s}"):
        assert account_key not in text and account_key[:20] not in text and account_key[:43] not in text
        assert KEY not in text and "client-secret-value" not in text
        assert "AccountName=vstsapp" in text  # what is not secret stays readable
