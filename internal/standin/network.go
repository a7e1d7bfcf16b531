package standin

import (
	"errors"
	"net"
)

// NetworkAddress is an address of this machine that is not loopback, as a peer on the network
// connects from: tests of what the function refuses to such a peer (emulator mode) connect from
// it. In a network namespace of your own, add one first (ip addr add 10.99.0.1/32 dev lo).
func NetworkAddress() (string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		if ip, ok := a.(*net.IPNet); ok && ip.IP.To4() != nil && !ip.IP.IsLoopback() && !ip.IP.IsLinkLocalUnicast() {
			return ip.IP.String(), nil
		}
	}
	return "", errors.New("this machine has no non-loopback IPv4 address to connect from; add one (ip addr add 10.99.0.1/32 dev lo)")
}
