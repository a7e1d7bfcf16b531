package proficienthmac

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Emulator mode (FIREBASE_AUTH_EMULATOR_HOST set) trusts unsigned tokens, so it serves only the
// developer's own machine: requests from and to loopback addresses, loopback origins unless
// CORS_ALLOWED_ORIGINS says otherwise, and never where Google's metadata server answers.

// refuseUnlessLocal refuses, in emulator mode, a request that did not come from this machine to
// this machine: the client's address, every address a proxy says it forwarded for, the Host and
// any X-Forwarded-Host must all be loopback. The Functions Framework's server listens on every
// interface (a peer on the network shows in the client address); a dev server's proxy sends the
// function's own Host but the browser's in X-Forwarded-Host (a page that rebinds its name to
// 127.0.0.1, or a peer reaching a dev server that listens on every interface, shows there).
func refuseUnlessLocal(r *http.Request) *apiError {
	notLocal := func(what string) *apiError {
		return permissionDenied("emulator_host_refused", fmt.Sprintf(
			"Against the Auth emulator this function answers only requests from this machine to this machine, and %s is not a loopback address.", what), nil)
	}
	if !isLoopbackAddr(r.RemoteAddr) {
		return notLocal(fmt.Sprintf("the client address %.64q", r.RemoteAddr))
	}
	for _, name := range []string{"X-Forwarded-For", "X-Real-Ip"} {
		for _, addr := range listValues(r.Header, name) {
			if !isLoopbackAddr(addr) {
				return notLocal(fmt.Sprintf("%s %.64q", name, addr))
			}
		}
	}
	for _, addr := range forwardedFor(r.Header) {
		if !isLoopbackAddr(addr) {
			return notLocal(fmt.Sprintf("Forwarded for=%.64q", addr))
		}
	}
	if !isLoopbackHost(r.Host) {
		return notLocal(fmt.Sprintf("the Host %.64q", r.Host))
	}
	for _, host := range listValues(r.Header, "X-Forwarded-Host") {
		if !isLoopbackHost(host) {
			return notLocal(fmt.Sprintf("X-Forwarded-Host %.64q", host))
		}
	}
	return nil
}

// listValues are the comma-separated items of every header line named name.
func listValues(h http.Header, name string) []string {
	var items []string
	for _, line := range h.Values(name) {
		for item := range strings.SplitSeq(line, ",") {
			items = append(items, strings.TrimSpace(item))
		}
	}
	return items
}

// forwardedFor are the for= values of RFC 7239 Forwarded headers, unquoted. Read to refuse, not
// to trust: a value it cannot read as an address (an obfuscated node, "unknown") is refused too.
func forwardedFor(h http.Header) []string {
	var addrs []string
	for _, element := range listValues(h, "Forwarded") {
		for pair := range strings.SplitSeq(element, ";") {
			name, value, _ := strings.Cut(strings.TrimSpace(pair), "=")
			if strings.EqualFold(name, "for") {
				addrs = append(addrs, strings.Trim(value, `"`))
			}
		}
	}
	return addrs
}

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

// metadataProbeTimeout bounds looking for a metadata server: where one runs, it answers at once.
const metadataProbeTimeout = time.Second

// checkNoMetadataServer refuses emulator mode where Google's metadata server answers (GCE, GKE,
// Cloud Run, App Engine flexible…). GCE_METADATA_HOST, when set, names it; otherwise
// metadata.google.internal is probed only if it resolves, which it does only on Google's machines.
func checkNoMetadataServer(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, metadataProbeTimeout)
	defer cancel()
	host := os.Getenv("GCE_METADATA_HOST")
	if host == "" {
		host = "metadata.google.internal"
		if _, err := net.DefaultResolver.LookupHost(ctx, host); err != nil {
			return nil
		}
	}
	if !metadataServerAnswers(ctx, host) {
		return nil
	}
	return &configError{envEmulatorHost, fmt.Sprintf("is set where Google's metadata server answers (at %.100s)", host),
		"remove it: on Google's infrastructure the function must verify real tokens, and with the emulator unsigned tokens get HMACs"}
}

// metadataServerAnswers reports whether host answers as Google's metadata server does.
func metadataServerAnswers(ctx context.Context, host string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/computeMetadata/v1/", nil)
	if err != nil {
		return false
	}
	req.Header.Set("Metadata-Flavor", "Google")
	// Its own transport: no proxy from the environment, and no connection kept.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.Header.Get("Metadata-Flavor") == "Google"
}
