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
// developer's own machine: loopback Host values, loopback origins unless CORS_ALLOWED_ORIGINS
// says otherwise, and never where Google's metadata server answers.

// errHostNotLoopback refuses a request whose Host is not loopback in emulator mode: a web page
// that rebinds its own name to 127.0.0.1 would otherwise reach the function as same-origin.
var errHostNotLoopback = permissionDenied("emulator_host_refused",
	"Against the Auth emulator this function answers only requests to localhost or a loopback address.", nil)

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
