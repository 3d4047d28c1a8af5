package maps

import (
	"net/netip"
	"strconv"
	"strings"
)

// DomainIn reports whether domain is in the class c (local-host-names,
// relay-domains), ignoring case and a trailing dot. With subdomains, a
// parent domain in c counts too, as sendmail's "$* $=R" does for
// relay-domains unless FEATURE(relay_hosts_only): "example.com" in c
// takes "mail.example.com" but not "badexample.com". local-host-names
// ({w}) is matched without subdomains.
func DomainIn(c Class, domain string, subdomains bool) bool {
	d := strings.TrimSuffix(lowerASCII(domain), ".")
	if d == "" {
		return false
	}
	for _, k := range domainKeys(d) {
		if c.HasFold(k) {
			return true
		}
		if !subdomains {
			return false
		}
	}
	return false
}

// AddrIn reports whether ip matches a network entry of c, as
// relay-domains entries like "128.32" or "IPv6:2002:c0a8:02c7" match
// client addresses: by whole leading octets, or by whole leading groups of
// 16 bits (see Access for the IPv6 rule).
func AddrIn(c Class, ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	want := map[string]bool{}
	for _, k := range addrKeys(ip) {
		want[k] = true
	}
	for w := range c {
		k := lowerASCII(w)
		if rest, ok := strings.CutPrefix(k, "ipv6:"); ok {
			n, ok := normIPv6(rest)
			if !ok {
				continue
			}
			k = "ipv6:" + n
		}
		if want[k] {
			return true
		}
	}
	return false
}

// domainKeys is name and its parent domains, most specific first:
// "a.b.example" gives "a.b.example", "b.example", "example". A domain
// literal ("[192.0.2.1]") is only itself.
func domainKeys(name string) []string {
	if strings.HasPrefix(name, "[") {
		return []string{name}
	}
	keys := []string{name}
	for {
		i := strings.IndexByte(name, '.')
		if i < 0 || i == len(name)-1 {
			return keys
		}
		name = name[i+1:]
		keys = append(keys, name)
	}
}

// addrKeys is what sendmail's LookUpAddress tries for a client address,
// most specific first: "192.0.2.7", "192.0.2", "192.0", "192"; for IPv6,
// "ipv6:" and the eight groups, then seven, down to one, each group in
// hex without leading zeros ("ipv6:2001:db8:0:0:0:0:0:1", ...,
// "ipv6:2001"). An IPv4-mapped address is looked up as IPv4.
func addrKeys(ip netip.Addr) []string {
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() {
		return nil
	}
	if ip.Is4() {
		b := ip.As4()
		o := []string{strconv.Itoa(int(b[0])), strconv.Itoa(int(b[1])), strconv.Itoa(int(b[2])), strconv.Itoa(int(b[3]))}
		return []string{strings.Join(o, "."), strings.Join(o[:3], "."), strings.Join(o[:2], "."), o[0]}
	}
	g := groups(ip)
	keys := make([]string, 0, 8)
	for n := 8; n >= 1; n-- {
		keys = append(keys, "ipv6:"+strings.Join(g[:n], ":"))
	}
	return keys
}

// bracketKeys is addrKeys in square brackets: the {client_name} sendmail
// uses for a client whose address does not resolve to a name, and the
// prefixes LookUpDomain strips it to ("[192.0.2.7]", "[192.0.2]", ...).
func bracketKeys(ip netip.Addr) []string {
	keys := addrKeys(ip)
	for i, k := range keys {
		keys[i] = "[" + k + "]"
	}
	return keys
}

// groups is the eight 16-bit groups of an IPv6 address in lowercase hex
// without leading zeros.
func groups(ip netip.Addr) []string {
	b := ip.As16()
	g := make([]string, 8)
	for i := range g {
		g[i] = strconv.FormatUint(uint64(b[2*i])<<8|uint64(b[2*i+1]), 16)
	}
	return g
}

// normIPv6 canonicalises the part of an access key after "IPv6:". A
// whole address (with "::" or a dotted quad) becomes its eight groups; a
// prefix of one to eight groups keeps its groups without leading zeros,
// so "2002:c0a8:02c7" (cf/README's example for 2002:c0a8:2c7::/48) is
// "2002:c0a8:2c7". ok is false if s is neither.
func normIPv6(s string) (string, bool) {
	if strings.Contains(s, "::") || strings.Contains(s, ".") {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", false
		}
		return strings.Join(groups(a), ":"), true
	}
	parts := strings.Split(s, ":")
	if len(parts) > 8 {
		return "", false
	}
	for i, p := range parts {
		if len(p) < 1 || len(p) > 4 {
			return "", false
		}
		v, err := strconv.ParseUint(p, 16, 16)
		if err != nil {
			return "", false
		}
		parts[i] = strconv.FormatUint(v, 16)
	}
	return strings.Join(parts, ":"), true
}
