package loadgen

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// AllowList is where mapload may send traffic: loopback (always), the
// listed networks and the listed host names. The run's backend supplies it
// (mapquake's one address allow-list, orchestrator/core/safety.py), as the
// comma-separated value of --allow. The zero value allows loopback only.
type AllowList struct {
	prefixes []netip.Prefix
	names    []string // lower case, no trailing dot, sorted
}

// ParseAllowList reads a comma-separated list of CIDR networks
// ("10.244.0.0/16"), single IP addresses and exact host names
// ("cache-0.mq-run.svc"). Blank items are ignored, so "" is loopback only.
func ParseAllowList(s string) (AllowList, error) {
	var a AllowList
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		switch {
		case item == "":
			continue
		case strings.Contains(item, "/"):
			p, err := netip.ParsePrefix(item)
			if err != nil {
				return AllowList{}, fmt.Errorf("--allow %q: %q is not a CIDR network", s, item)
			}
			if p != p.Masked() {
				return AllowList{}, fmt.Errorf("--allow %q: %s has host bits set (did you mean %s?)", s, item, p.Masked())
			}
			a.prefixes = append(a.prefixes, unmapPrefix(p))
		default:
			if ip, err := netip.ParseAddr(item); err == nil {
				ip = ip.Unmap()
				a.prefixes = append(a.prefixes, netip.PrefixFrom(ip, ip.BitLen()))
				continue
			}
			name := normalizeName(item)
			if !validName(name) {
				return AllowList{}, fmt.Errorf("--allow %q: %q is neither a network, an IP address nor a host name", s, item)
			}
			if !slices.Contains(a.names, name) {
				a.names = append(a.names, name)
			}
		}
	}
	slices.Sort(a.names)
	return a, nil
}

// unmapPrefix turns an IPv4-mapped IPv6 network (::ffff:10.0.0.0/104) into
// its IPv4 form, since addresses are unmapped before they are compared.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p
}

func normalizeName(host string) string {
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// validName reports whether name looks like a DNS host name: dot-separated
// labels of letters, digits, '-' and '_', none empty.
func validName(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// AllowsIP reports whether mapload may send traffic to ip: loopback or
// inside a listed network.
func (a AllowList) AllowsIP(ip netip.Addr) bool {
	ip = ip.Unmap()
	if ip.IsLoopback() {
		return true
	}
	for _, p := range a.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// AllowsName reports whether host is one of the listed names (case and a
// trailing dot do not matter).
func (a AllowList) AllowsName(host string) bool {
	_, found := slices.BinarySearch(a.names, normalizeName(host))
	return found
}

// String describes the list in words, e.g. "loopback or 10.244.0.0/16 or
// the names a, b".
func (a AllowList) String() string {
	parts := []string{"loopback"}
	for _, p := range a.prefixes {
		if !p.Addr().IsLoopback() {
			parts = append(parts, p.String())
		}
	}
	if len(a.names) > 0 {
		parts = append(parts, "the names "+strings.Join(a.names, ", "))
	}
	return strings.Join(parts, " or ")
}

// CheckAddr enforces the allow-list on addr (HOST:PORT). A listed name is
// dialled as it is (the run created it). Any other name is resolved and
// every address it resolves to must be allowed. It returns the address to
// dial; for a checked IP or resolved name the host is the checked IP, so a
// later lookup cannot send traffic elsewhere.
func (a AllowList) CheckAddr(ctx context.Context, addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("--addr %q is not HOST:PORT", addr)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if !a.AllowsIP(ip) {
			return "", fmt.Errorf("--addr %q refused: mapload only sends to %s (see --allow), not %s", addr, a, ip)
		}
		return net.JoinHostPort(ip.Unmap().String(), port), nil
	}
	if a.AllowsName(host) {
		return addr, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return "", fmt.Errorf("--addr %q refused: cannot resolve %q (%v)", addr, host, err)
	}
	for _, ip := range ips {
		if !a.AllowsIP(ip) {
			return "", fmt.Errorf("--addr %q refused: %s resolves to %s; mapload only sends to %s (see --allow)", addr, host, ip, a)
		}
	}
	return net.JoinHostPort(ips[0].Unmap().String(), port), nil
}
