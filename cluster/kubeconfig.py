"""Kubeconfig files: one per client identity, with the CA and the client certificate embedded by path."""

from __future__ import annotations

from pathlib import Path

import yaml

from cluster.certs import ClientIdentity, Pki


def write_kubeconfig(path: Path, server: str, pki: Pki, client: ClientIdentity) -> Path:
    """Write a kubeconfig for ``client`` talking to ``server`` (https URL); returns ``path``."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "mapquake", "cluster": {"server": server, "certificate-authority": str(pki.ca_cert)}}],
        "users": [
            {
                "name": client.user,
                "user": {"client-certificate": str(pki.cert(client.stem)), "client-key": str(pki.key(client.stem))},
            }
        ],
        "contexts": [{"name": "mapquake", "context": {"cluster": "mapquake", "user": client.user}}],
        "current-context": "mapquake",
    }
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o600)
    return path
