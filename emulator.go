package proficienthmac

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// Emulator mode (FIREBASE_AUTH_EMULATOR_HOST set) trusts unsigned tokens, so it serves only the
// developer's own machine: requests from and to loopback addresses, loopback origins unless
// CORS_ALLOWED_ORIGINS says otherwise, and never where Google's metadata server answers.

// checkEmulatorConfig keeps emulator mode, where unsigned tokens get HMACs, to demo data on the
// developer's own machine: a host:port to reach, a demo- project, a secret given by value, a
// loopback listener, and none of Google's runtimes. (At start, checkEmulatorAtStart does the
// checks that need I/O; each request, refuseUnlessLocal.)
func checkEmulatorConfig(cfg config, getenv func(string) string) error {
	if cfg.emulatorHost == "" {
		return nil
	}
	if cfg.onCloudRun {
		return &configError{envEmulatorHost, "is set on Cloud Run",
			"remove it: with it the Admin SDK accepts unsigned tokens, so anyone could get any user's HMAC"}
	}
	if _, _, err := net.SplitHostPort(cfg.emulatorHost); err != nil || strings.Contains(cfg.emulatorHost, "/") {
		return &configError{envEmulatorHost, fmt.Sprintf("is %.100q, which is not host:port", cfg.emulatorHost),
			"set it to the emulator's host:port with no scheme, such as 127.0.0.1:9099 (connectAuthEmulator takes a URL; this variable does not)"}
	}
	const unsigned = "with " + envEmulatorHost + " set, unsigned tokens get HMACs"
	if marker := firstSetName(getenv, googleRuntimeMarkers...); marker != "" {
		return &configError{envEmulatorHost, "is set on a Google runtime (" + marker + " is set)",
			"remove it: " + unsigned + ", so anyone could get any user's HMAC"}
	}
	if !strings.HasPrefix(cfg.projectID, "demo-") {
		return &configError{firstSetName(getenv, "GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT"),
			fmt.Sprintf("is %.100q, which is not a demo- project, and %s is set", cfg.projectID, envEmulatorHost),
			"run the emulator and the function with a demo- project (firebase emulators:start --project demo-myapp), " +
				"or unset " + envEmulatorHost + " to verify real tokens: " + unsigned}
	}
	for _, b := range secretBackends {
		if !b.byValue && getenv(b.variable) != "" {
			return &configError{b.variable, "is set together with " + envEmulatorHost,
				"give a demo secret by value in " + secretByValue.variable + " instead (such as hsec_local_demo_secret): " + unsigned}
		}
	}
	if host := strings.TrimSpace(getenv("HOST")); host != "" && !isLoopbackName(host) {
		return &configError{"HOST", fmt.Sprintf("is %.100q, which is not a loopback address, and %s is set", host, envEmulatorHost),
			"unset it (the runner listens on 127.0.0.1) or use 127.0.0.1, ::1 or localhost: " + unsigned}
	}
	return nil
}

// checkEmulatorAtStart makes the checks of emulator mode that need I/O: no metadata server
// answers (so not a Google machine), and the emulator does.
func checkEmulatorAtStart(ctx context.Context, host string) error {
	if err := checkNoMetadataServer(ctx); err != nil {
		return err
	}
	return checkEmulator(ctx, host)
}

// checkEmulator makes sure the Auth emulator answers, when one is named: the Admin SDK asks it
// about every token, and a wrong host or port would otherwise make every request wait for the
// verification timeout and answer 503.
func checkEmulator(ctx context.Context, host string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conn, err := new(net.Dialer).DialContext(ctx, "tcp", host)
	if err != nil {
		return &configError{envEmulatorHost, fmt.Sprintf("is %.100q, and nothing answers there", host),
			"start the emulator (firebase emulators:start --only auth) or set the host:port it prints"}
	}
	return conn.Close()
}

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
		for addr := range listValues(r.Header, name) {
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
	for host := range listValues(r.Header, "X-Forwarded-Host") {
		if !isLoopbackHost(host) {
			return notLocal(fmt.Sprintf("X-Forwarded-Host %.64q", host))
		}
	}
	return nil
}

// forwardedFor are the for= values of RFC 7239 Forwarded headers, unquoted. Read to refuse, not
// to trust: a value it cannot read as an address (an obfuscated node, "unknown") is refused too.
func forwardedFor(h http.Header) []string {
	var addrs []string
	for element := range listValues(h, "Forwarded") {
		for pair := range strings.SplitSeq(element, ";") {
			name, value, _ := strings.Cut(strings.TrimSpace(pair), "=")
			if strings.EqualFold(name, "for") {
				addrs = append(addrs, strings.Trim(value, `"`))
			}
		}
	}
	return addrs
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
