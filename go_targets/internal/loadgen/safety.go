package loadgen

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// benchmarkNet is 198.18.0.0/15 (RFC 2544), the only non-loopback range
// mapquake uses: its own network namespaces, with no route out.
var benchmarkNet = netip.MustParsePrefix("198.18.0.0/15")

// Allowed reports whether mapload may send traffic to ip.
func Allowed(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsLoopback() || benchmarkNet.Contains(ip)
}

// CheckAddr enforces the safety rule: addr's host must be a loopback address
// or inside 198.18.0.0/15. A name is resolved and every address it resolves
// to must qualify. It returns the address to dial, with the host replaced by
// the checked IP so a later lookup cannot send traffic elsewhere.
func CheckAddr(ctx context.Context, addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("--addr %q is not HOST:PORT", addr)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if !Allowed(ip) {
			return "", fmt.Errorf("--addr %q refused: mapload only sends to loopback or 198.18.0.0/15, not %s", addr, ip)
		}
		return net.JoinHostPort(ip.Unmap().String(), port), nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return "", fmt.Errorf("--addr %q refused: cannot resolve %q (%v)", addr, host, err)
	}
	for _, ip := range ips {
		if !Allowed(ip) {
			return "", fmt.Errorf("--addr %q refused: %s resolves to %s; mapload only sends to loopback or 198.18.0.0/15", addr, host, ip)
		}
	}
	return net.JoinHostPort(ips[0].Unmap().String(), port), nil
}
