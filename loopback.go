package proficienthmac

import (
	"net"
	"net/url"
	"strings"
)

// Which addresses, hosts and origins are this machine's: emulator mode serves only them, and
// they are what a developer's own pages and dev servers use.

// isLoopbackAddr reports whether an address (IP, with or without a port; IPv6 in brackets when
// it has one) is a loopback address.
func isLoopbackAddr(addr string) bool {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return ip != nil && ip.IsLoopback()
}

// isLoopbackName reports whether a host name (no port) is localhost or a loopback IP address.
func isLoopbackName(host string) bool {
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	return strings.EqualFold(host, "localhost")
}

// isLoopbackHost reports whether a Host header (port optional) names this machine: localhost,
// *.localhost (which browsers never resolve through DNS), 127.0.0.0/8 or [::1].
func isLoopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	} else if strings.HasPrefix(hostport, "[") && strings.HasSuffix(hostport, "]") {
		host = hostport[1 : len(hostport)-1]
	}
	host = strings.ToLower(host)
	return isLoopbackName(host) || strings.HasSuffix(host, ".localhost")
}

// isLoopbackOrigin reports whether a browser's Origin is a page served from this machine.
func isLoopbackOrigin(origin string) bool {
	u, err := url.Parse(origin)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Path == "" && isLoopbackHost(u.Host)
}
