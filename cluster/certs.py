"""The cluster's PKI: one CA, the serving and client certificates of every component, the SA key pair.

ECDSA P-256 keys (fast to make; every component accepts them). A client certificate's CN is the
user name and its O entries the groups, which is how Kubernetes' x509 authenticator reads them.
Written once per state dir and reused by a later `up` of the same dir.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cluster.layout import NODE_IP, NODE_NAME, SERVICE_IP

VALIDITY = dt.timedelta(days=365)

APISERVER_DNS = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
    "localhost",
)
APISERVER_IPS = ("127.0.0.1", NODE_IP, SERVICE_IP)


@dataclass(frozen=True)
class ClientIdentity:
    """A component's client certificate: file stem, user name (CN) and groups (O)."""

    stem: str
    user: str
    groups: tuple[str, ...] = ()


ADMIN = ClientIdentity("admin", "admin", ("system:masters",))
KCM = ClientIdentity("kube-controller-manager", "system:kube-controller-manager")
SCHEDULER = ClientIdentity("kube-scheduler", "system:kube-scheduler")
KUBELET = ClientIdentity("kubelet", f"system:node:{NODE_NAME}", ("system:nodes",))
# The apiserver's identity towards the kubelet (logs, exec, port-forward).
APISERVER_KUBELET = ClientIdentity("apiserver-kubelet-client", "kube-apiserver-kubelet-client", ("system:masters",))
COREDNS = ClientIdentity("coredns", "mapquake:coredns")
CLIENTS = (ADMIN, KCM, SCHEDULER, KUBELET, APISERVER_KUBELET, COREDNS)


@dataclass(frozen=True)
class Pki:
    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def sa_key(self) -> Path:
        return self.dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.dir / "sa.pub"

    def cert(self, stem: str) -> Path:
        return self.dir / f"{stem}.crt"

    def key(self, stem: str) -> Path:
        return self.dir / f"{stem}.key"


def ensure_pki(directory: Path) -> Pki:
    """Create the PKI in ``directory`` unless it is already complete there (then reuse it)."""
    pki = Pki(directory)
    wanted = [pki.ca_cert, pki.sa_key, pki.sa_pub, pki.cert("apiserver"), pki.cert("kubelet-serving")]
    wanted += [pki.cert(c.stem) for c in CLIENTS]
    if all(p.exists() for p in wanted):
        return pki
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_key = _new_key()
    ca_name = _name("mapquake-cluster-ca")
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    _write(pki.ca_cert, pki.ca_key, ca, ca_key)

    def issue(stem: str, name: x509.Name, usage: x509.ObjectIdentifier, sans: list[x509.GeneralName]) -> None:
        key = _new_key()
        builder = _builder(name, ca.subject, key.public_key()).add_extension(
            x509.ExtendedKeyUsage([usage]), critical=False
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        _write(pki.cert(stem), pki.key(stem), builder.sign(ca_key, hashes.SHA256()), key)

    server_sans: list[x509.GeneralName] = [x509.DNSName(d) for d in APISERVER_DNS]
    server_sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in APISERVER_IPS]
    issue("apiserver", _name("kube-apiserver"), ExtendedKeyUsageOID.SERVER_AUTH, server_sans)
    kubelet_sans: list[x509.GeneralName] = [x509.DNSName(NODE_NAME), x509.IPAddress(ipaddress.ip_address(NODE_IP))]
    issue("kubelet-serving", _name(f"system:node:{NODE_NAME}"), ExtendedKeyUsageOID.SERVER_AUTH, kubelet_sans)
    for client in CLIENTS:
        issue(client.stem, _name(client.user, client.groups), ExtendedKeyUsageOID.CLIENT_AUTH, [])

    sa_key = _new_key()
    pki.sa_key.write_bytes(_key_pem(sa_key))
    pki.sa_key.chmod(0o600)
    pki.sa_pub.write_bytes(
        sa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return pki


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str, orgs: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))  # tolerate small clock differences
        .not_valid_after(now + VALIDITY)
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(cert_path: Path, key_path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    key_path.write_bytes(_key_pem(key))
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
