"""What the cluster package writes, checked without starting anything (no root needed)."""

from __future__ import annotations

import ipaddress
import json
import tomllib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from cluster import controlplane, node, teardown
from cluster.certs import ensure_pki
from cluster.layout import NODE_IP, PAUSE_IMAGE, Paths
from cluster.state import ClusterState


def test_pki_has_the_names_components_check_and_is_reused(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path / "pki")
    server = x509.load_pem_x509_certificate(pki.cert("apiserver").read_bytes())
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "198.19.0.1", "198.19.240.1"}
    assert {"kubernetes", "kubernetes.default.svc", "localhost"} <= set(sans.get_values_for_type(x509.DNSName))
    admin = x509.load_pem_x509_certificate(pki.cert("admin").read_bytes()).subject
    assert admin.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "admin"
    assert admin.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"
    kubelet = x509.load_pem_x509_certificate(pki.cert("kubelet").read_bytes()).subject
    assert kubelet.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:node:mapquake-node"
    assert pki.ca_key.stat().st_mode & 0o077 == 0
    ca = pki.ca_cert.read_bytes()
    ensure_pki(tmp_path / "pki")
    assert pki.ca_cert.read_bytes() == ca


def test_coredns_serves_only_cluster_zones_and_forwards_nowhere(tmp_path: Path) -> None:
    corefile = controlplane.corefile(tmp_path / "coredns.conf")
    assert f"bind {NODE_IP}" in corefile
    assert "forward" not in corefile
    assert corefile.startswith("cluster.local:53 ")


def test_containerd_config_has_the_sandbox_fixes(tmp_path: Path) -> None:
    conf = tomllib.loads(node.containerd_config(Paths(tmp_path)))
    cri = conf["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True
    assert cri["sandbox_image"] == PAUSE_IMAGE
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is False
    assert conf["grpc"]["address"] != "/run/containerd/containerd.sock"  # never a system containerd's socket


def test_cni_conf_gives_pods_no_way_out(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    node.write_cni_conf(paths)
    bridge = json.loads((paths.cni_conf_dir / "10-mapquake.conflist").read_text())["plugins"][0]
    assert (bridge["bridge"], bridge["isGateway"], bridge["ipMasq"]) == ("mqk0", False, False)
    (rng,) = bridge["ipam"]["ranges"][0]
    assert ipaddress.ip_address(rng["rangeStart"]) in ipaddress.ip_network(rng["subnet"])


def test_kubelet_config_for_this_host(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    paths.etc.mkdir()
    conf = node.kubelet_config(paths, ensure_pki(paths.pki))
    assert (conf["cgroupDriver"], conf["failSwapOn"], conf["failCgroupV1"]) == ("cgroupfs", False, False)
    assert conf["clusterDNS"] == [NODE_IP]
    assert conf["authentication"]["x509"]["clientCAFile"].endswith("ca.crt")  # type: ignore[index]


def test_state_records_intent_before_the_pid_and_survives_a_reload(tmp_path: Path) -> None:
    state = ClusterState.load(tmp_path / "state.json")
    state.record("process", "etcd", log="x")
    assert ClusterState.load(state.path).find("process", "etcd").pid is None  # type: ignore[union-attr]
    state.started("etcd", 123, 456)
    entry = ClusterState.load(state.path).find("process", "etcd")
    assert entry is not None and (entry.pid, entry.start_time) == (123, 456)


def test_down_without_state_touches_nothing(tmp_path: Path) -> None:
    (tmp_path / "keep").write_text("not the cluster's")
    assert teardown.down(Paths(tmp_path)) == []
    assert (tmp_path / "keep").exists()


def test_kubepods_cgroups_are_found_on_cgroup_v1_and_v2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(teardown, "CGROUP_ROOT", tmp_path)
    for hierarchy in ("cpu", "memory", "unified"):
        (tmp_path / hierarchy).mkdir()
    (tmp_path / "cpu" / "kubepods" / "besteffort").mkdir(parents=True)
    (tmp_path / "memory" / "kubepods").mkdir()
    assert teardown._kubepods_roots() == [tmp_path / "cpu" / "kubepods", tmp_path / "memory" / "kubepods"]
    (tmp_path / "kubepods").mkdir()  # cgroup v2: kubepods right under the root
    assert teardown._kubepods_roots()[0] == tmp_path / "kubepods"
    assert len(teardown._kubepods_roots()) == 3
