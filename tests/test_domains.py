import pytest

from shared.ado.domains import is_allowed_origin, is_well_formed, normalize_location, origin_of, search_base_url

EXTRA = ("http://127.0.0.1:8080", "https://ado.contoso.local")


@pytest.mark.parametrize(
    "domain",
    [
        "https://dev.azure.com/fabrikam/",
        "https://fabrikam.visualstudio.com/",
        "https://fabrikam.visualstudio.com/DefaultCollection/",
        "http://127.0.0.1:8080/fabrikam/",
        "https://ado.contoso.local/tfs/DefaultCollection/",
    ],
)
def test_well_formed(domain: str) -> None:
    assert is_well_formed(domain, EXTRA)


@pytest.mark.parametrize(
    "domain",
    [
        "fabrikam.visualstudio.com",  # the legacy form Sentry migrates
        "https://fabrikam.visualstudio.com",  # no trailing slash
        "http://fabrikam.visualstudio.com/",  # not https
        "https://dev.azure.com/",  # no organization
        "https://dev.azure.com/a/b/",  # more than the organization
        "https://evil.example/",
        "https://dev.azure.com.evil.example/fabrikam/",
        "https://app.vssps.visualstudio.com/",  # a sub-host, not an organization
        "https://fabrikam.visualstudio.com:8443/",
        "https://user:pass@dev.azure.com/fabrikam/",
        "https://dev.azure.com/fabrikam/?x=1/",
        "http://127.0.0.1:9999/fabrikam/",  # loopback, but not listed
        "",
        "https://dev.azure.com/fab rikam/",
    ],
)
def test_not_well_formed(domain: str) -> None:
    assert not is_well_formed(domain, EXTRA)


def test_allowed_origins_for_credentials() -> None:
    for url in (
        "https://dev.azure.com/fabrikam/_apis/wit/workitems/1",
        "https://almsearch.dev.azure.com/fabrikam/_apis/search/workitemsearchresults",
        "https://fabrikam.visualstudio.com/_apis/x",
        "https://fabrikam.almsearch.visualstudio.com/_apis/x",
        "http://127.0.0.1:8080/anything",
    ):
        assert is_allowed_origin(url, EXTRA), url
    for url in (
        "http://dev.azure.com/fabrikam/",
        "https://evil.example/",
        "https://dev.azure.com:444/fabrikam/",
        "http://127.0.0.1:8081/",
        "https://visualstudio.com.evil.example/",
        "not a url",
        "https://x:y@dev.azure.com/",
    ):
        assert not is_allowed_origin(url, EXTRA), url
    assert origin_of("HTTPS://Dev.Azure.com/x") == "https://dev.azure.com"


def test_normalize_location() -> None:
    assert normalize_location("https://fabrikam.visualstudio.com", ()) == "https://fabrikam.visualstudio.com/"
    assert normalize_location("https://dev.azure.com/Fabrikam", ()) == "https://dev.azure.com/Fabrikam/"
    assert normalize_location("http://evil.example/", ()) is None
    assert normalize_location(None, ()) is None
    assert normalize_location(42, ()) is None


def test_search_base_url() -> None:
    assert search_base_url("https://dev.azure.com/fab/", "fab", None) == "https://almsearch.dev.azure.com/fab/"
    assert search_base_url("https://fab.visualstudio.com/", "fab", None) == "https://fab.almsearch.visualstudio.com/"
    assert search_base_url("https://ado.contoso.local/tfs/C/", "x", None) == "https://ado.contoso.local/tfs/C/"
    assert search_base_url("https://dev.azure.com/fab/", "fab", "http://127.0.0.1:1/{organization}") == (
        "http://127.0.0.1:1/fab/"
    )
