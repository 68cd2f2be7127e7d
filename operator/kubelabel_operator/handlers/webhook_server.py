"""The HTTPS server of the admission webhook: Kopf's WebhookServer with two changes.

- Its self-signed certificate is made with `cryptography`. Kopf's own builder needs `certbuilder`
  and `oscrypto`, and oscrypto 1.3.0 (the last release) cannot read OpenSSL versions from 3.0.10 on
  ("Error detecting the version of libcrypto").
- In `service` mode the API server is told to reach it through a Service, not a URL.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import AsyncIterator, Collection
from typing import Any

import kopf
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubelabel_operator.settings import OperatorSettings

# Regenerated at every start, so the span only has to outlive one run of the operator.
CERT_DAYS = 3650


class WebhookServer(kopf.WebhookServer):
    @staticmethod
    def build_certificate(hostnames: Collection[str], password: str | None = None) -> tuple[bytes, bytes]:
        """A self-signed CA certificate for `hostnames` (names and IPs; unspecified IPs left out)."""
        ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
        names: list[str] = []
        for host in dict.fromkeys(hostnames):
            try:
                ip = ipaddress.ip_address(host)
            except ValueError:
                names.append(host)
            else:
                if not ip.is_unspecified:
                    ips.append(ip)
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names] + [x509.IPAddress(ip) for ip in ips]
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else str(ips[0]))])
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_encipherment=False,
                    content_commitment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
        )
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
        return cert.public_bytes(serialization.Encoding.PEM), key_pem


class ServiceWebhookServer(WebhookServer):
    """Tells the API server to call `https://<service>.<namespace>.svc:<port>/<handler>`."""

    def __init__(self, *, service_name: str, service_namespace: str, service_port: int, **kwargs: Any) -> None:
        host = f"{service_name}.{service_namespace}.svc"
        sans = [service_name, f"{service_name}.{service_namespace}", f"{host}.cluster.local"]
        super().__init__(host=host, extra_sans=[*sans, *kwargs.pop("extra_sans", ())], **kwargs)
        self.service = kopf.WebhookClientConfigService(
            name=service_name, namespace=service_namespace, port=service_port
        )

    async def __call__(self, fn: kopf.WebhookFn) -> AsyncIterator[kopf.WebhookClientConfig]:
        async for config in super().__call__(fn):
            # Kopf appends each handler's id to the service path, as it does to a url.
            service = kopf.WebhookClientConfigService(**self.service)
            if self.path:
                service["path"] = self.path.rstrip("/")
            out = kopf.WebhookClientConfig(service=service)
            if config.get("caBundle"):
                out["caBundle"] = config["caBundle"]
            yield out


def build_server(config: OperatorSettings) -> WebhookServer:
    """The webhook server the settings describe (certificate files only when both are given)."""
    tls: dict[str, Any] = {}
    if config.webhook_cert_file and config.webhook_key_file:
        tls = {"certfile": config.webhook_cert_file, "pkeyfile": config.webhook_key_file}
        # cert-manager's Secrets carry ca.crt; without one the certificate itself is the CA bundle.
        if config.webhook_ca_file and os.path.exists(config.webhook_ca_file):
            tls["cafile"] = config.webhook_ca_file
    common: dict[str, Any] = {
        "addr": config.webhook_host,
        "port": config.webhook_port,
        "cadump": config.webhook_ca_dump,
    }
    if config.webhook_mode == "service":
        return ServiceWebhookServer(
            service_name=config.webhook_service_name,
            service_namespace=config.webhook_service_namespace,
            service_port=config.webhook_service_port,
            **common,
            **tls,
        )
    return WebhookServer(host=config.webhook_url_host, **common, **tls)
