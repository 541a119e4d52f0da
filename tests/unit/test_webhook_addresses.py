"""Which callback URLs webhooks may call, and where an attempt connects."""

from __future__ import annotations

import ipaddress

import pytest

from vidqueue.errors import CallbackRefused, InvalidRequest
from vidqueue.settings import Settings
from vidqueue.webhooks.addresses import (
    Target,
    accept_callback_url,
    check_callback_url,
    is_public,
    redact,
    resolve_target,
)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "100.100.100.200",
        "168.63.129.16",
        "0.0.0.0",  # noqa: S104 - an address to refuse, not to bind
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "2002:a00:1::",
    ],
)
def test_local_private_and_metadata_addresses_are_not_public(address):
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "::ffff:1.1.1.1"]
)
def test_internet_addresses_are_public(address):
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://example.com/hook", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("example.com/hook", "http:// or https://"),
        ("https:///hook", "names no host"),
        ("https://example.com:http/hook", "port"),
        ("http://10.0.0.1/hook", "10.0.0.1, a private"),
        ("http://[::1]:8080/hook", "::1, a private"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("https://example.com/" + "a" * 2048, "longer than"),
    ],
)
def test_bad_callback_urls_are_refused_with_a_reason(url, words):
    with pytest.raises(CallbackRefused, match=words):
        check_callback_url(url)


def test_an_allowed_host_may_be_a_local_address():
    url = "http://127.0.0.1:9000/hook"

    assert check_callback_url(url, frozenset({"127.0.0.1"})) == url
    with pytest.raises(CallbackRefused):
        check_callback_url(url, frozenset({"localhost"}))


def test_a_host_name_is_only_resolved_at_delivery():
    url = "https://app.example.com/hooks/video?token=abc"

    assert check_callback_url(url) == url


def test_a_name_that_resolves_to_loopback_is_refused_unless_allowed():
    with pytest.raises(CallbackRefused, match="localhost is at"):
        resolve_target("http://localhost:9000/hook")

    target = resolve_target("http://localhost:9000/hook", frozenset({"localhost"}))

    assert target.addresses
    assert all(ipaddress.ip_address(a).is_loopback for a in target.addresses)
    assert target.host == "localhost"


def test_a_target_connects_to_an_address_and_names_its_host():
    url = "https://user:pw@app.example.com:8443/h?x=1"
    target = Target(url, "app.example.com", ("203.0.113.9", "2001:db8::5"))

    assert target.connect_url("203.0.113.9") == "https://203.0.113.9:8443/h?x=1"
    assert target.connect_url("2001:db8::5") == "https://[2001:db8::5]:8443/h?x=1"
    assert target.host_header == "app.example.com:8443"
    assert target.is_https


def test_a_target_without_a_port_keeps_the_schemes_own():
    target = Target("http://hooks.example.com/h", "hooks.example.com", ("2001:db8::5",))

    assert target.connect_url("2001:db8::5") == "http://[2001:db8::5]/h"
    assert target.host_header == "hooks.example.com"
    assert not target.is_https


def test_redact_keeps_scheme_host_and_port_only():
    url = "https://user:secret@app.example.com:8443/hooks/T0/B0/XYZ?token=abc#x"

    assert redact(url) == "https://app.example.com:8443"


def test_callback_urls_need_webhooks_on():
    off = Settings()
    on = Settings(webhooks="on", webhook_secret="s")

    assert accept_callback_url(off, None) == ""
    with pytest.raises(InvalidRequest, match="no webhooks"):
        accept_callback_url(off, "https://app.example.com/hook")
    assert accept_callback_url(on, "https://app.example.com/hook").startswith("https")
