"""The nft scripts and tc commands the engines send (exact text), through a fake runner."""

from __future__ import annotations

from collections.abc import Sequence

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


def test_render_drop_reject_loss_redirect() -> None:
    rules = nft.NamespaceRules(
        cuts=[nft.Cut("p.0", ("198.18.7.3", "198.18.7.4"), "drop"), nft.Cut("p.1", ("198.18.7.6",), "reject")],
        losses=[nft.Loss("n.0", 0.125)],
        redirects=[nft.Redirect("n.0", 40123)],
    )
    assert nft.render("0a0b0c0d", rules) == (
        "table inet mapquake_0a0b0c0d {}\n"
        "delete table inet mapquake_0a0b0c0d\n"
        "table inet mapquake_0a0b0c0d {\n"
        "  chain input {\n"
        "    type filter hook input priority -10; policy accept;\n"
        '    ip saddr { 198.18.7.6 } tcp flags & rst == rst accept comment "p.1"\n'
        '    ip saddr { 198.18.7.6 } icmp type destination-unreachable accept comment "p.1"\n'
        '    ip saddr { 198.18.7.3, 198.18.7.4 } drop comment "p.0"\n'
        '    ip saddr { 198.18.7.6 } meta l4proto tcp reject with tcp reset comment "p.1"\n'
        '    ip saddr { 198.18.7.6 } reject with icmpx admin-prohibited comment "p.1"\n'
        '    numgen random mod 10000 < 1250 drop comment "n.0"\n'
        '    iifname != "lo" meta l4proto tcp ct direction original ct status & dnat == 0 '
        'reject with tcp reset comment "n.0"\n'
        "  }\n"
        "  chain prerouting {\n"
        "    type nat hook prerouting priority -110; policy accept;\n"
        '    iifname != "lo" meta l4proto tcp tcp dport != 40123 redirect to :40123 comment "n.0"\n'
        "  }\n"
        "}\n"
    )


def test_a_loss_of_100_percent_is_a_plain_drop() -> None:
    # nft: "Value 10000 exceeds valid range 0-9999" for numgen random mod 10000 < 10000.
    text = nft.render("0a0b0c0d", nft.NamespaceRules(losses=[nft.Loss("n.0", 1.0), nft.Loss("n.1", 0.9999)]))
    assert '    drop comment "n.0"\n' in text
    assert '    numgen random mod 10000 < 9999 drop comment "n.1"\n' in text
    assert "< 10000" not in text


def test_apply_empty_deletes_only_our_table() -> None:
    runner = FakeRunner()
    handle = NetnsHandle.local("mq-0a0b0c0d-a")
    nft.apply(handle, "0a0b0c0d", nft.NamespaceRules(), runner)
    assert runner.calls == [
        (
            ["nsenter", "--net=/run/netns/mq-0a0b0c0d-a", "nft", "-f", "-"],
            "table inet mapquake_0a0b0c0d {}\ndelete table inet mapquake_0a0b0c0d\n",
        )
    ]


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
