"""The nft JSON documents and tc commands the engines send (exactly), through a fake runner."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from chaos.engines import netem, nft
from chaos.engines.command import CommandResult, NetnsHandle


class FakeRunner:
    def __init__(self, replies: dict[str, CommandResult] | None = None) -> None:
        self.calls: list[tuple[list[str], str | None]] = []
        self.replies = replies or {}

    def __call__(self, argv: Sequence[str], stdin: str | None) -> CommandResult:
        self.calls.append((list(argv), stdin))
        for key, reply in self.replies.items():
            if key in " ".join(argv):
                return reply
        return CommandResult(0, "", "")


TABLE = {"family": "inet", "name": "mapquake_0a0b0c0d"}
REF = {"family": "inet", "table": "mapquake_0a0b0c0d"}
DELETE_DOCUMENT = {"nftables": [{"add": {"table": TABLE}}, {"delete": {"table": TABLE}}]}


def saddr(*addresses: str) -> dict[str, Any]:
    return {
        "match": {
            "op": "==",
            "left": {"payload": {"protocol": "ip", "field": "saddr"}},
            "right": {"set": list(addresses)},
        }
    }


def rule_lines(stdin: str | None) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """(chain, comment, expressions) of every rule an ``nft -j -f -`` document adds."""
    document = json.loads(stdin or "")
    return [
        (r["chain"], r["comment"], r["expr"])
        for c in document["nftables"]
        if "rule" in c.get("add", {})
        for r in [c["add"]["rule"]]
    ]


def test_render_drop_reject_loss_redirect() -> None:
    rules = nft.NamespaceRules(
        cuts=[nft.Cut("p.0", ("198.18.7.3", "198.18.7.4"), "drop"), nft.Cut("p.1", ("198.18.7.6",), "reject")],
        losses=[nft.Loss("n.0", 0.125)],
        redirects=[nft.Redirect("n.0", 40123)],
    )
    tcp = {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}}
    outside = {"match": {"op": "!=", "left": {"meta": {"key": "iifname"}}, "right": "lo"}}
    reset = {"reject": {"type": "tcp reset"}}

    def rule(chain: str, comment: str, *expr: dict[str, Any]) -> dict[str, Any]:
        return {"add": {"rule": {**REF, "chain": chain, "expr": list(expr), "comment": comment}}}

    assert nft.render("0a0b0c0d", rules) == {
        "nftables": [
            {"add": {"table": TABLE}},
            {"delete": {"table": TABLE}},
            {"add": {"table": TABLE}},
            {
                "add": {
                    "chain": {
                        **REF,
                        "name": "input",
                        "type": "filter",
                        "hook": "input",
                        "prio": -10,
                        "policy": "accept",
                    }
                }
            },
            {
                "add": {
                    "chain": {
                        **REF,
                        "name": "prerouting",
                        "type": "nat",
                        "hook": "prerouting",
                        "prio": -110,
                        "policy": "accept",
                    }
                }
            },
            rule(
                "input",
                "p.1",
                saddr("198.18.7.6"),
                {
                    "match": {
                        "op": "==",
                        "left": {"&": [{"payload": {"protocol": "tcp", "field": "flags"}}, "rst"]},
                        "right": "rst",
                    }
                },
                {"accept": None},
            ),
            rule(
                "input",
                "p.1",
                saddr("198.18.7.6"),
                {
                    "match": {
                        "op": "==",
                        "left": {"payload": {"protocol": "icmp", "field": "type"}},
                        "right": "destination-unreachable",
                    }
                },
                {"accept": None},
            ),
            rule("input", "p.0", saddr("198.18.7.3", "198.18.7.4"), {"drop": None}),
            rule("input", "p.1", saddr("198.18.7.6"), tcp, reset),
            rule("input", "p.1", saddr("198.18.7.6"), {"reject": {"type": "icmpx", "expr": "admin-prohibited"}}),
            rule(
                "input",
                "n.0",
                {
                    "match": {
                        "op": "<",
                        "left": {"numgen": {"mode": "random", "mod": 10000, "offset": 0}},
                        "right": 1250,
                    }
                },
                {"drop": None},
            ),
            rule(
                "input",
                "n.0",
                outside,
                tcp,
                {"match": {"op": "==", "left": {"ct": {"key": "direction"}}, "right": "original"}},
                {"match": {"op": "!", "left": {"ct": {"key": "status"}}, "right": "dnat"}},
                reset,
            ),
            rule(
                "prerouting",
                "n.0",
                outside,
                tcp,
                {"match": {"op": "!=", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 40123}},
                {"redirect": {"port": 40123}},
            ),
        ]
    }


def test_a_loss_of_100_percent_is_a_plain_drop() -> None:
    # nft: "Value 10000 exceeds valid range 0-9999" for numgen random mod 10000 < 10000.
    document = nft.render("0a0b0c0d", nft.NamespaceRules(losses=[nft.Loss("n.0", 1.0), nft.Loss("n.1", 0.9999)]))
    rules = {
        c["add"]["rule"]["comment"]: c["add"]["rule"]["expr"]
        for c in document["nftables"]
        if "rule" in c.get("add", {})
    }
    assert rules["n.0"] == [{"drop": None}]
    assert rules["n.1"][0]["match"]["right"] == 9999 and rules["n.1"][-1] == {"drop": None}
    assert "10000" not in str([e.get("match", {}).get("right") for e in rules["n.0"] + rules["n.1"]])


def test_apply_sends_json_and_empty_deletes_only_our_table() -> None:
    runner = FakeRunner()
    handle = NetnsHandle.local("mq-0a0b0c0d-a")
    rules = nft.NamespaceRules(cuts=[nft.Cut("p.0", ("198.18.7.3",), "drop")])
    nft.apply(handle, "0a0b0c0d", rules, nft.NftCommand(runner))
    nft.apply(handle, "0a0b0c0d", nft.NamespaceRules(), nft.NftCommand(runner))
    assert [argv for argv, _ in runner.calls] == [
        ["nsenter", "--net=/run/netns/mq-0a0b0c0d-a", "nft", "-j", "-f", "-"]
    ] * 2
    assert json.loads(runner.calls[0][1] or "") == nft.render("0a0b0c0d", rules)
    assert json.loads(runner.calls[1][1] or "") == DELETE_DOCUMENT


@pytest.mark.parametrize(
    "source",
    [
        "198.18.7.3 } drop; }; table inet evil { chain c { type filter hook input priority 0; policy drop; } }; #",
        '198.18.7.3 }\ninclude "/etc/hostname"\n#',
        "198.18.7.0/24",
        "::1",
        "",
    ],
)
def test_render_refuses_what_is_not_an_ipv4_address(source: str) -> None:
    with pytest.raises(ValueError):
        nft.render("0a0b0c0d", nft.NamespaceRules(cuts=[nft.Cut("p.0", ("198.18.7.3", source), "drop")]))


def test_render_refuses_bad_run_ids_comments_modes_and_ports() -> None:
    ok = nft.NamespaceRules(cuts=[nft.Cut("p.0", ("198.18.7.3",), "drop")])
    for run_id in ("0a0b0c0d x", '0a0b0c0d {}\ninclude "/etc/hostname"', ""):
        with pytest.raises(ValueError, match="run id"):
            nft.render(run_id, ok)
        with pytest.raises(ValueError, match="run id"):
            nft.delete_table(NetnsHandle.local("mq-0a0b0c0d-a"), run_id, nft.NftCommand(FakeRunner()))
    with pytest.raises(ValueError, match="fault id"):
        nft.render("0a0b0c0d", nft.NamespaceRules(cuts=[nft.Cut('p.0"; flush ruleset; "', ("198.18.7.3",), "drop")]))
    with pytest.raises(ValueError, match="mode"):
        nft.render("0a0b0c0d", nft.NamespaceRules(cuts=[nft.Cut("p.0", ("198.18.7.3",), "accept")]))
    with pytest.raises(ValueError, match="port"):
        nft.render("0a0b0c0d", nft.NamespaceRules(redirects=[nft.Redirect("n.0", 70000)]))


def test_without_removes_one_fault() -> None:
    rules = nft.NamespaceRules(cuts=[nft.Cut("a", ("1.1.1.1",), "drop"), nft.Cut("b", ("2.2.2.2",), "drop")])
    assert rules.without("a").cuts == [nft.Cut("b", ("2.2.2.2",), "drop")]


def test_netem_refuses_a_foreign_root_and_removes_only_its_own() -> None:
    handle = NetnsHandle.local("mq-0a0b0c0d-a")
    foreign = FakeRunner({"qdisc show": CommandResult(0, '[{"kind":"htb","handle":"1:","root":true}]', "")})
    try:
        netem.apply(handle, "eth0", 0.05, 0.0, foreign)
        raise AssertionError("expected a refusal")
    except Exception as err:
        assert "did not make" in str(err)
    assert netem.remove(handle, "eth0", foreign) is False
    ours = FakeRunner({"qdisc show": CommandResult(0, '[{"kind":"noqueue","handle":"0:","root":true}]', "")})
    netem.apply(handle, "eth0", 0.05, 0.002, ours)
    assert ours.calls[-1][0][2:] == [
        *("tc", "qdisc", "replace", "dev", "eth0", "root", "handle", "6d71:"),
        *("netem", "delay", "50000us", "2000us"),
    ]
