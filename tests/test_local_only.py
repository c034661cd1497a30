"""Nothing let in from a web page: foreign Origins, cross-site fetches and foreign Host names
are refused; captures need a token and keep the publish size limit (issue 11, items 10-11)."""

from __future__ import annotations

import httpx
import pytest
from qstash import QStash
from qstash_emulator import Emulator
from test_cli import free_port, start


def simple_cross_site_publish(emu: Emulator, **headers: str) -> httpx.Response:
    """What a page's `fetch(url, {method: "POST", mode: "no-cors", body})` sends: a "simple"
    request (no preflight) with the public dev token in the query string."""
    target = f"{emu.url}/__capture/internal"
    return httpx.post(
        f"{emu.url}/v2/publish/{target}?qstashToken={emu.token}",
        content=b"from a web page",
        headers={"Content-Type": "text/plain", **headers},
    )


def nothing_published(emu: Emulator) -> bool:
    return not list(emu.engine.state(emu.user).logs) and not list(emu.engine.delivered)


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "http://evil.example:8080", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "null"},  # sandboxed iframes and file:// pages
        {"Sec-Fetch-Site": "cross-site"},  # a no-cors GET or navigation carries no Origin
        {"Origin": "http://127.0.0.1.evil.example"},
    ],
)
def test_a_cross_site_request_from_a_web_page_is_refused(
    emu: Emulator, headers: dict[str, str]
) -> None:
    res = simple_cross_site_publish(emu, **headers)
    assert res.status_code == 403
    assert "Forbidden" in res.json()["error"]
    emu.settle()
    assert nothing_published(emu)


def test_a_foreign_host_header_is_refused_dns_rebinding(emu: Emulator) -> None:
    res = httpx.get(
        f"{emu.url}/v2/logs",
        headers={"Authorization": f"Bearer {emu.token}", "Host": "rebind.evil.example"},
    )
    assert res.status_code == 403
    assert "Host" in res.json()["error"]


@pytest.mark.parametrize(
    "host", ["localhost", "127.0.0.1", "127.0.0.2", "[::1]", "app.localhost", "LOCALHOST"]
)
def test_loopback_host_names_are_accepted(emu: Emulator, host: str) -> None:
    res = httpx.get(
        f"{emu.url}/v2/logs",
        headers={"Authorization": f"Bearer {emu.token}", "Host": f"{host}:{emu.port}"},
    )
    assert res.status_code == 200


@pytest.mark.parametrize(
    "origin", ["http://localhost:3000", "http://127.0.0.1:5173", "https://[::1]:8443"]
)
def test_pages_served_from_this_machine_are_local(emu: Emulator, origin: str) -> None:
    res = simple_cross_site_publish(emu, Origin=origin, **{"Sec-Fetch-Site": "cross-site"})
    assert res.status_code == 200


def test_the_sdk_and_plain_clients_send_no_origin_and_pass(emu: Emulator, client: QStash) -> None:
    client.message.publish(url=f"{emu.url}/__capture/sdk", body="x")
    assert simple_cross_site_publish(emu).status_code == 200  # curl-like: no Origin
    emu.settle()
    assert len(list(emu.engine.delivered)) == 2


def test_more_origins_and_hosts_can_be_allowed() -> None:
    with Emulator(
        allowed_origins=["https://app.example:8443"], allowed_hosts=["host.docker.internal"]
    ) as emu:
        assert simple_cross_site_publish(emu, Origin="https://app.example:8443").status_code == 200
        assert simple_cross_site_publish(emu, Origin="https://app.example").status_code == 403
        res = httpx.get(
            f"{emu.url}/v2/logs",
            headers={
                "Authorization": f"Bearer {emu.token}",
                "Host": f"host.docker.internal:{emu.port}",
            },
        )
        assert res.status_code == 200
    with Emulator(allowed_origins=["*"]) as emu:
        assert simple_cross_site_publish(emu, Origin="https://any.example").status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/__dashboard", "/__dashboard/messages", "/__captures", "/__capture/x", "/llm/v1/models"],
)
def test_every_route_is_covered_dashboard_included(emu: Emulator, path: str) -> None:
    res = httpx.get(
        f"{emu.url}{path}",
        headers={"Authorization": f"Bearer {emu.token}", "Origin": "https://evil.example"},
    )
    assert res.status_code == 403


def test_the_llm_routes_refuse_in_openais_shape(emu: Emulator) -> None:
    res = httpx.post(
        f"{emu.url}/llm/v1/chat/completions",
        headers={"Authorization": f"Bearer {emu.token}", "Origin": "https://evil.example"},
        json={"model": "meta-llama/Meta-Llama-3-8B-Instruct", "messages": []},
    )
    assert res.status_code == 403
    assert isinstance(res.json()["error"], dict)


def test_the_dev_server_takes_allow_flags() -> None:
    port = free_port()
    proc, _banner = start(f"--port={port}", "--allow-origin", "https://app.example")
    try:
        url = f"http://127.0.0.1:{port}/v2/logs"
        assert httpx.get(url, headers={"Origin": "https://app.example"}).status_code == 401
        assert httpx.get(url, headers={"Origin": "https://evil.example"}).status_code == 403
    finally:
        proc.terminate()
        proc.wait(10)


# -- item 11: captures ------------------------------------------------------------------------


def test_capture_listings_need_a_token(emu: Emulator) -> None:
    httpx.post(f"{emu.url}/__capture/secret", content=b"another user's delivery")
    for path in ("/__captures", "/__captures/secret"):
        assert httpx.get(emu.url + path).status_code == 401
        assert (
            httpx.get(emu.url + path, headers={"Authorization": "Bearer nope"}).status_code == 401
        )
        ok = httpx.get(emu.url + path, headers={"Authorization": f"Bearer {emu.token}"})
        assert ok.status_code == 200
    assert httpx.put(f"{emu.url}/__captures/secret", json={"status": 500}).status_code == 401
    assert httpx.delete(f"{emu.url}/__captures/secret").status_code == 401
    # Deliveries still reach capture URLs without one (QStash's requests carry no token).
    assert httpx.post(f"{emu.url}/__capture/secret", content=b"x").status_code == 200


def test_a_capture_body_has_the_publish_size_limit(emu: Emulator) -> None:
    limit = emu.user.quota.max_message_size
    res = httpx.post(f"{emu.url}/__capture/big", content=b"x" * (limit + 1))
    assert res.status_code == 413
    assert "error" in res.json()
    assert emu.app  # the store kept nothing
    shown = httpx.get(f"{emu.url}/__captures", headers={"Authorization": f"Bearer {emu.token}"})
    assert shown.json().get("big", 0) == 0
    assert httpx.post(f"{emu.url}/__capture/big", content=b"x" * limit).status_code == 200


def test_a_host_judged_before_it_was_allowed_is_judged_again() -> None:
    # Verdicts are remembered per Host header; allowing a name must not leave a stale refusal.
    from qstash_emulator.http.local_only import LocalOnly

    local = LocalOnly()
    assert local.host_ok("127.0.0.1:8080") and not local.host_ok("app.test:8080")
    local.allow_hosts(["app.test"])
    assert local.host_ok("app.test:8080") and not local.host_ok("evil.test")
    local.allow_hosts(["*"])
    assert local.host_ok("evil.test")
