"""URL templates: a base URL only from the text or an endpoint variable at the start; values in
the path are one segment each, never `.`/`..`/empty; query and fragment values encoded."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from runbooks.engine import Engine
from runbooks.interpolate import Interpolator, Redactor, StaticSecrets
from runbooks.model import ValidationError
from runbooks.runtime import EngineConfig
from runbooks.urls import render_url, url_problems
from schemas.errors import NonRetryableError
from tests.unit.test_runbooks_support import book, local_server

SECRETS = StaticSecrets({"HOOK": "https://hooks.example/T0/B0/s3cr3tpart"})


def url(template: str, bases: frozenset[str] = frozenset({"api"}), **values: Any) -> str:
    interp = Interpolator(values, SECRETS, Redactor(), bases)
    return render_url(interp, template, bases)


def refused(template: str, bases: frozenset[str] = frozenset({"api"}), **values: Any) -> str:
    with pytest.raises(NonRetryableError) as info:
        url(template, bases, **values)
    return str(info.value)


# --- the seed's shape: an endpoint base URL, then path segments ------------------------------
@pytest.mark.parametrize(("base", "want"), [
    ("https://api.dns.example", "https://api.dns.example/records/12345"),
    ("https://api.dns.example/", "https://api.dns.example/records/12345"),
    ("https://api.dns.example/v2", "https://api.dns.example/v2/records/12345"),
    ("http://127.0.0.1:8053/v2/", "http://127.0.0.1:8053/v2/records/12345"),
])
def test_an_endpoint_base_url_is_inserted_as_a_url(base: str, want: str) -> None:
    assert url("${api}/records/${record_id}", api=base, record_id="12345") == want


@pytest.mark.parametrize(("value", "segment"), [
    ("a/b", "a%2Fb"),
    ("x?admin=1", "x%3Fadmin%3D1"),
    ("x#frag", "x%23frag"),
    ("100%", "100%25"),
    ("%2e%2e", "%252e%252e"),
    ("../admin", "..%2Fadmin"),
    ("a b", "a%20b"),
    ("é", "%C3%A9"),
    ("@evil.example", "%40evil.example"),
    ("...", "..."),
])
def test_a_path_value_is_exactly_one_encoded_segment(value: str, segment: str) -> None:
    got = url("${api}/records/${id}/ttl", api="https://dns.example", id=value)
    assert got == f"https://dns.example/records/{segment}/ttl"
    assert httpx.URL(got).raw_path == f"/records/{segment}/ttl".encode()  # nothing resolved


@pytest.mark.parametrize("value", ["", ".", ".."])
def test_a_value_that_would_make_a_dot_or_empty_segment_is_refused(value: str) -> None:
    # httpx sends https://dns.example/records/.. as "/": another endpoint
    assert "makes a URL path segment" in refused("https://dns.example/records/${id}", id=value)
    assert "makes a URL path segment" in refused("${api}/records/${id}/x",
                                                 api="https://dns.example", id=value)


def test_values_in_the_query_and_fragment_are_encoded_for_their_part() -> None:
    got = url("https://dns.example/search?name=${n}&type=A#${f}", n="a&type=MX#x", f="y#z")
    assert got == "https://dns.example/search?name=a%26type%3DMX%23x&type=A#y%23z"
    assert httpx.URL(got).params["name"] == "a&type=MX#x"


def test_a_literal_dot_or_empty_segment_in_the_file_is_the_author_s() -> None:
    assert url("https://dns.example/a/./b//c") == "https://dns.example/a/./b//c"


# --- what may start a URL ----------------------------------------------------------------------
def test_a_value_variable_cannot_begin_a_url() -> None:
    message = refused("${host}/records/1", host="https://evil.example")
    assert "begins the URL but is not a base URL" in message and "kind: endpoint" in message


@pytest.mark.parametrize("template", [
    "https://${host}/records",
    "https://${host}.dns.example/records",
    "https://dns.example:${port}/records",
    "https://dns.example${path}",
    "https://user:${pw}@dns.example/",
])
def test_no_variable_inside_the_scheme_or_host(template: str) -> None:
    values = {"host": "evil.example", "port": "1", "path": ".evil.example", "pw": "x"}
    assert "inside the URL's scheme or host" in refused(template, **values)


def test_after_a_base_variable_the_template_goes_on_with_a_separator() -> None:
    assert "must go on with /, ? or #" in refused("${api}${id}", api="https://a.example", id="x")
    assert "must go on with /, ? or #" in refused("${api}.evil/x", api="https://a.example")


@pytest.mark.parametrize(("base", "why"), [
    ("ftp://files.example", "not an http(s) base URL"),
    ("dns.example", "not an http(s) base URL"),
    ("https://dns.example/?token=1", "query or fragment"),
    ("https://dns.example/#x", "query or fragment"),
    ("https://dns.example/x\r\nHost: evil", "control"),
])
def test_a_bad_base_value_is_refused(base: str, why: str) -> None:
    assert why in refused("${api}/records/1", api=base)


def test_a_whole_url_base_may_carry_a_query_and_a_secret_may_be_the_base() -> None:
    assert url("${api}", api="https://chat.example/hook?key=k") == "https://chat.example/hook?key=k"
    assert url("${secret:HOOK}") == "https://hooks.example/T0/B0/s3cr3tpart"
    assert url("${secret:HOOK}/x/${id}", id="a/b") == (
        "https://hooks.example/T0/B0/s3cr3tpart/x/a%2Fb")


def test_only_http_schemes_and_absolute_urls() -> None:
    assert "not an http(s) URL" in refused("file:///etc/passwd")
    assert "must start with http(s)://" in refused("/records/${id}", id="1")


def test_url_problems_are_what_validation_reports() -> None:
    assert url_problems("${api}/records/${id}", {"api"}) == []
    assert url_problems("https://dns.example/records/${id}", set()) == []
    assert "not a base URL" in url_problems("${host}/records", set())[0]
    assert "scheme or host" in url_problems("https://${h}/", {"h"})[0]


# --- through the engine ------------------------------------------------------------------------
def dns_step(action: str) -> dict[str, Any]:
    return {"id": "dns", "action_type": "api", "action": action,
            "parameters": {"method": "PUT", "data": {"target": "${ip}"}}}


async def test_the_seed_dns_step_reaches_the_record_through_an_endpoint_base() -> None:
    rb = book([dns_step("${dns_api}/records/${record_id}")], parameters={
        "dns_api": {"type": "string", "kind": "endpoint"},
        "record_id": {"type": "string", "default": "12345"},
        "ip": {"type": "string", "default": "10.0.1.2"},
    })
    with local_server() as (base, state):
        engine = Engine(EngineConfig())
        result = await engine.run(rb, {"dns_api": base + "/dns/"})
        await engine.aclose()
    assert result.status == "succeeded", result.error
    assert [(r.method, r.path, r.body) for r in state.requests] == [
        ("PUT", "/dns/records/12345", {"target": "10.0.1.2"})]


async def test_a_hostile_record_id_stays_in_its_segment_or_is_refused() -> None:
    rb = book([dns_step("${dns_api}/records/${record_id}")], parameters={
        "dns_api": {"type": "string", "kind": "endpoint"},
        "record_id": {"type": "string", "overridable": True, "default": "1"},
        "ip": {"type": "string", "default": "10.0.1.2"},
    })
    with local_server() as (base, state):
        engine = Engine(EngineConfig())
        for rid in ("../../admin/users?all=1#x", ".."):
            await engine.run(rb, {"dns_api": base, "record_id": rid})
        await engine.aclose()
    assert [r.path for r in state.requests] == ["/records/..%2F..%2Fadmin%2Fusers%3Fall%3D1%23x"]


def test_validation_names_the_step_that_starts_a_url_with_a_value_variable() -> None:
    rb = book([dns_step("${dns_api}/records/1")], variables={"dns_api": "https://dns.example",
                                                              "ip": "10.0.1.2"})
    with pytest.raises(ValidationError) as info:
        Engine(EngineConfig()).validate(rb, {})
    assert info.value.problems == [
        "step dns: URL: ${dns_api} begins the URL but is not a base URL: declare it as a "
        "parameter of `kind: endpoint` (or `webhook`)"]


async def test_a_dry_run_plans_the_url_exactly_as_it_would_be_requested() -> None:
    rb = book([dns_step("${dns_api}/records/${record_id}"),
               {**dns_step("https://dns.example/x/${record_id}/y"), "id": "dot"}], parameters={
        "dns_api": {"type": "string", "kind": "endpoint"},
        "record_id": {"type": "string", "default": "a/b"},
        "ip": {"type": "string", "default": "10.0.1.2"},
    })
    result = await Engine(EngineConfig()).run(rb, {"dns_api": "https://dns.example/v1/"},
                                              dry_run=True)
    assert result.steps["dns"].output["plan"]["url"] == "https://dns.example/v1/records/a%2Fb"
    result = await Engine(EngineConfig()).run(rb, {"dns_api": "https://dns.example/v1/",
                                                   "record_id": ".."}, dry_run=True)
    assert result.steps["dot"].output["plan"]["url"].startswith("(refused: ${record_id} makes")
