"""The users' nginx template as the gateway: what it passes, what it refuses, and how."""

from __future__ import annotations

import ssl

import aiohttp
import pytest

from receiver.formats import encode_records
from receiver.store import open_store_from_url
from receiver_tools.firehose_request import build_request, client_ssl_context, send_once
from tests.apps import receiver_app, serve_app
from tests.builders import make_samples
from tests.chain.nginx import TEMPLATE, NginxGateway, render_template
from tests.processes import free_port

pytestmark = pytest.mark.slow


def test_the_template_names_every_placeholder_it_needs():
    with pytest.raises(KeyError, match="RECEIVER"):
        render_template(
            TEMPLATE.read_text(),
            {"LISTEN": "443", "SERVER_NAME": "x", "TLS_CERTIFICATE": "c", "TLS_CERTIFICATE_KEY": "k"},
        )


async def test_only_the_firehose_path_is_passed_to_the_receiver(tmp_path, tls):
    store = open_store_from_url("memory://")
    async with serve_app(receiver_app(store)) as client:
        with NginxGateway(tmp_path / "nginx", f"127.0.0.1:{client.port}", tls) as gateway:
            base = gateway.url.removesuffix("/aws/firehose/metrics")
            async with aiohttp.ClientSession() as session:
                context = client_ssl_context(tls.ca_cert)
                async with session.get(gateway.url, ssl=context) as health_check:
                    assert health_check.status == 200
                async with session.get(base + "/api/v1/entities", ssl=context) as api:
                    assert api.status == 404


async def test_a_body_over_the_gateway_limit_is_answered_400_never_413(tmp_path, tls):
    # The template's limit is above Firehose's largest body; lower it to reach it cheaply.
    def small_limit(server: str) -> str:
        assert "client_max_body_size 96m;" in server
        return server.replace("client_max_body_size 96m;", "client_max_body_size 1k;")

    with NginxGateway(tmp_path / "nginx", f"127.0.0.1:{free_port()}", tls, edit=small_limit) as gateway:
        request = build_request(encode_records(make_samples(40), "json"), access_key="k")
        assert len(request.body) > 1024
        async with aiohttp.ClientSession() as session:
            attempt = await send_once(session, gateway.url, request, ssl_context=client_ssl_context(tls.ca_cert))
    assert attempt.status == 400  # Firehose retries a 400 and then backs the batch up to S3
    assert "buffering size" in attempt.reason


async def test_a_tls_1_2_client_is_served(tmp_path, tls):
    # Firehose may negotiate TLS 1.2; the gateway must not demand 1.3 only.
    context = client_ssl_context(tls.ca_cert)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    store = open_store_from_url("memory://")
    async with serve_app(receiver_app(store)) as client:
        with NginxGateway(tmp_path / "nginx", f"127.0.0.1:{client.port}", tls) as gateway:
            async with aiohttp.ClientSession() as session:
                request = build_request(encode_records(make_samples(1), "json"))
                attempt = await send_once(session, gateway.url, request, ssl_context=context)
    assert attempt.ok, attempt
