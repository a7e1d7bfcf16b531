package proficienthmac

import (
	"cmp"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/proficient-hmac/proficient-hmac/internal/standin"
)

// TestEmulatorThatDoesNotAnswer: a wrong emulator port stops the start at once, naming the
// variable, instead of making every request wait for a 503.
func TestEmulatorThatDoesNotAnswer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	noMetadataServer(t)
	cfg := testConfig()
	cfg.emulatorHost = closed
	_, err = newHandler(context.Background(), cfg, dependencies{logs: &lockedBuffer{}})
	var ce *configError
	if !errors.As(err, &ce) || ce.variable != envEmulatorHost || !strings.Contains(err.Error(), closed) {
		t.Fatalf("got %v, want a configuration error naming %s and %s", err, envEmulatorHost, closed)
	}
}

// fakeEmulatorAddr is a loopback address that accepts connections, enough for the start's check
// that the emulator answers. The Admin SDK reads FIREBASE_AUTH_EMULATOR_HOST from the process's
// environment, which these tests leave unset: tokens are still verified against the stand-in's
// keys, so the emulator-mode rules can be tested with really signed tokens.
func fakeEmulatorAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().String()
}

// emulatorConfig is the configuration loadConfig makes in emulator mode, with env added.
func emulatorConfig(t *testing.T, env map[string]string) config {
	t.Helper()
	all := map[string]string{"GOOGLE_CLOUD_PROJECT": testProject, envSecret: testSecret, envEmulatorHost: fakeEmulatorAddr(t)}
	for k, v := range env {
		all[k] = v
	}
	cfg, err := loadConfig(func(name string) string { return all[name] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestEmulatorModeServesLoopbackOnly: against the emulator, a request from another machine, or
// whose Host is not this machine (DNS rebinding from a web page), or that a proxy says it
// forwarded for either, is refused; only loopback pages get CORS headers unless
// CORS_ALLOWED_ORIGINS is set. (TestEmulatorModeRefusesANetworkPeer and, in e2e, the Next.js
// test send from a real non-loopback address.)
func TestEmulatorModeServesLoopbackOnly(t *testing.T) {
	noMetadataServer(t)
	h, logs := newTestHandler(t, emulatorConfig(t, nil), dependencies{})
	anyOrigin, _ := newTestHandler(t, emulatorConfig(t, map[string]string{"CORS_ALLOWED_ORIGINS": "*"}), dependencies{})
	production, _ := newTestHandler(t, testConfig(), dependencies{})
	bearer := "Bearer " + idToken(t, claimsFor(testUID, nil))
	tests := []struct {
		name     string
		h        *handler
		method   string
		host     string
		origin   string
		wantCode int
		wantCORS bool
		from     string   // the client address; "" for 127.0.0.1:50000
		headers  []string // name, value pairs
	}{
		{"127.0.0.1 with a port", h, "POST", "127.0.0.1:8080", "", 200, false, "", nil},
		{"127.0.0.1", h, "POST", "127.0.0.1", "", 200, false, "", nil},
		{"another address in 127/8", h, "POST", "127.1.2.3:8080", "", 200, false, "", nil},
		{"localhost", h, "POST", "localhost:8080", "", 200, false, "", nil},
		{"LOCALHOST", h, "POST", "LOCALHOST:8080", "", 200, false, "", nil},
		{"a name under .localhost", h, "POST", "app.localhost:8080", "", 200, false, "", nil},
		{"[::1]", h, "POST", "[::1]:8080", "", 200, false, "", nil},
		{"[::1] without a port", h, "POST", "[::1]", "", 200, false, "", nil},
		{"a rebound public name", h, "POST", "attacker.example:8080", "", 403, false, "", nil},
		{"a public name without a port", h, "POST", "attacker.example", "", 403, false, "", nil},
		{"a name that starts like localhost", h, "POST", "localhost.attacker.example:8080", "", 403, false, "", nil},
		{"a name that starts like 127.0.0.1", h, "POST", "127.0.0.1.attacker.example", "", 403, false, "", nil},
		{"a LAN address", h, "POST", "192.168.1.20:8080", "", 403, false, "", nil},
		{"0.0.0.0", h, "POST", "0.0.0.0:8080", "", 403, false, "", nil},
		{"no Host", h, "POST", "", "", 403, false, "", nil},
		{"a preflight to a rebound name", h, "OPTIONS", "attacker.example:8080", "http://attacker.example:8080", 403, false, "", nil},
		{"a loopback page", h, "POST", "127.0.0.1:8080", "http://localhost:5173", 200, true, "", nil},
		{"a loopback page by address", h, "POST", "127.0.0.1:8080", "http://127.0.0.1:5002", 200, true, "", nil},
		{"a loopback preflight", h, "OPTIONS", "127.0.0.1:8080", "http://[::1]:5002", 204, true, "", nil},
		{"a public page", h, "POST", "127.0.0.1:8080", testOrigin, 200, false, "", nil},
		{"a public preflight", h, "OPTIONS", "127.0.0.1:8080", testOrigin, 204, false, "", nil},
		{"an opaque origin", h, "POST", "127.0.0.1:8080", "null", 200, false, "", nil},
		{"a public page, CORS_ALLOWED_ORIGINS=*", anyOrigin, "POST", "127.0.0.1:8080", testOrigin, 200, true, "", nil},
		{"a rebound name, CORS_ALLOWED_ORIGINS=*", anyOrigin, "POST", "attacker.example:8080", testOrigin, 403, true, "", nil},
		{"any Host without the emulator", production, "POST", "attacker.example:8080", "", 200, false, "", nil},
		// Who sent it: the client address, and what proxies say.
		{"from [::1]", h, "POST", "localhost:8080", "", 200, false, "[::1]:50000", nil},
		{"from a LAN peer", h, "POST", "localhost:8080", "", 403, false, "192.168.1.20:50000", nil},
		{"from a LAN peer, a preflight", h, "OPTIONS", "localhost:8080", "http://localhost:5173", 403, true, "192.168.1.20:50000", nil},
		{"from a LAN peer, CORS_ALLOWED_ORIGINS=*", anyOrigin, "POST", "localhost:8080", "", 403, false, "192.168.1.20:50000", nil},
		{"from an IPv4-mapped address", h, "POST", "localhost:8080", "", 403, false, "[::ffff:192.168.1.20]:50000", nil},
		{"from anywhere without the emulator", production, "POST", "localhost:8080", "", 200, false, "192.168.1.20:50000", nil},
		{"a proxy forwarding for loopback", h, "POST", "127.0.0.1:8080", "", 200, false, "", []string{"X-Forwarded-For", "127.0.0.1", "X-Forwarded-Host", "localhost:3000", "Forwarded", `for="[::1]:3000";host=localhost:3000`}},
		{"a proxy forwarding for a peer", h, "POST", "127.0.0.1:8080", "", 403, false, "", []string{"X-Forwarded-For", "127.0.0.1, 192.168.1.20"}},
		{"a proxy forwarding for a peer, with a port", h, "POST", "127.0.0.1:8080", "", 403, false, "", []string{"X-Forwarded-For", "192.168.1.20:5000"}},
		{"X-Real-IP of a peer", h, "POST", "127.0.0.1:8080", "", 403, false, "", []string{"X-Real-IP", "192.168.1.20"}},
		{"Forwarded for a peer", h, "POST", "127.0.0.1:8080", "", 403, false, "", []string{"Forwarded", "for=127.0.0.1, for=192.168.1.20;proto=http"}},
		{"Forwarded for an unknown node", h, "POST", "127.0.0.1:8080", "", 403, false, "", []string{"Forwarded", "for=unknown"}},
		{"Forwarded For in capitals", h, "POST", "127.0.0.1:8080", "", 403, false, "", []string{"Forwarded", `For="[2001:db8::1]:4711"`}},
		// Next.js's dev rewrite: Host is the function's own address, X-Forwarded-Host the browser's.
		{"a dev proxy for a rebound name", h, "POST", "127.0.0.1:8080", "", 403, false, "", []string{"X-Forwarded-Host", "attacker.example:3000"}},
		{"a dev proxy for a LAN address", h, "POST", "127.0.0.1:8080", "", 403, false, "", []string{"X-Forwarded-Host", "192.168.1.20:3000"}},
		{"a dev proxy, a second X-Forwarded-Host line", h, "POST", "127.0.0.1:8080", "", 403, false, "", []string{"X-Forwarded-Host", "localhost:3000", "X-Forwarded-Host", "attacker.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/api/proficient-hmac", nil)
			r.Host, r.RemoteAddr = tt.host, cmp.Or(tt.from, "127.0.0.1:50000")
			r.Header.Set("Authorization", bearer)
			for i := 0; i+1 < len(tt.headers); i += 2 {
				r.Header.Add(tt.headers[i], tt.headers[i+1])
			}
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			w := httptest.NewRecorder()
			tt.h.ServeHTTP(w, r)
			if w.Code != tt.wantCode {
				t.Fatalf("status: got %d, want %d (%s)", w.Code, tt.wantCode, w.Body.String())
			}
			if got := w.Header().Get("Access-Control-Allow-Origin"); (got != "") != tt.wantCORS || got != "" && got != tt.origin {
				t.Errorf("Access-Control-Allow-Origin: got %q, want CORS %v for %q", got, tt.wantCORS, tt.origin)
			}
			if tt.wantCode == 200 {
				checkServed(t, w, protocolREST, testUID, testUIDHMAC)
			}
			if tt.wantCode == 403 {
				body := w.Body.String()
				if a := decode(t, w); a.Error == nil || a.Error.Status != "PERMISSION_DENIED" || !strings.Contains(a.Error.Message, "is not a loopback address") {
					t.Errorf("got %s, want PERMISSION_DENIED naming what is not loopback, and no HMAC", body)
				}
			}
		})
	}
	if !strings.Contains(logs.String(), `"reason":"emulator_host_refused"`) {
		t.Errorf("log %q: want reason emulator_host_refused", logs.String())
	}
}

// TestEmulatorModeRefusedWhereMetadataServerAnswers: a metadata server that answers as Google's
// does means a Google machine: emulator mode refuses to start there. One that does not answer
// so, or none, lets it start.
func TestEmulatorModeRefusedWhereMetadataServerAnswers(t *testing.T) {
	metadataServer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Metadata-Flavor", "Google")
		w.Write([]byte("project/\n"))
	}))
	defer metadataServer.Close()
	t.Setenv("GCE_METADATA_HOST", strings.TrimPrefix(metadataServer.URL, "http://"))
	cfg := emulatorConfig(t, nil)
	_, err := newHandler(t.Context(), cfg, dependencies{logs: &lockedBuffer{}})
	var ce *configError
	if !errors.As(err, &ce) || ce.variable != envEmulatorHost || !strings.Contains(err.Error(), "metadata server") {
		t.Fatalf("got %v, want a configuration error naming %s and the metadata server", err, envEmulatorHost)
	}

	noMetadataServer(t)
	if _, err := newHandler(t.Context(), cfg, dependencies{logs: &lockedBuffer{}}); err != nil {
		t.Errorf("where no metadata server answers: got %v, want a start", err)
	}
	t.Setenv("GCE_METADATA_HOST", closedLoopbackAddr(t))
	if _, err := newHandler(t.Context(), cfg, dependencies{logs: &lockedBuffer{}}); err != nil {
		t.Errorf("where nothing listens at GCE_METADATA_HOST: got %v, want a start", err)
	}
}

// closedLoopbackAddr is a loopback address where nothing listens.
func closedLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestEmulatorModeRefusesANetworkPeer: served as funcframework.Start serves it (a ServeMux at
// "/", on every interface), emulator mode refuses a client that connects from this machine's
// network address, whatever Host it sends, and answers one that connects over loopback.
func TestEmulatorModeRefusesANetworkPeer(t *testing.T) {
	noMetadataServer(t)
	h, _ := newTestHandler(t, emulatorConfig(t, nil), dependencies{})
	mux := http.NewServeMux()
	mux.Handle("/", h)
	server := httptest.NewUnstartedServer(mux)
	listener, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	server.Listener = listener
	server.Start()
	defer server.Close()
	_, port, _ := net.SplitHostPort(listener.Addr().String())
	peer, err := standin.NetworkAddress()
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{}} // not the stand-in's, which dials only loopback
	for _, tt := range []struct {
		name, to string
		wantCode int
	}{
		{"over loopback", net.JoinHostPort("127.0.0.1", port), http.StatusUnauthorized}, // past the check: no token
		{"from the network", net.JoinHostPort(peer, port), http.StatusForbidden},
	} {
		req, _ := http.NewRequest("POST", "http://"+tt.to+"/api/proficient-hmac", nil)
		req.Host = "localhost:8080" // what a peer that knows the check would send
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.wantCode || strings.Contains(string(body), `"hmac"`) ||
			tt.wantCode == http.StatusForbidden && !strings.Contains(string(body), "the client address") {
			t.Errorf("%s: got %d %s, want %d", tt.name, resp.StatusCode, body, tt.wantCode)
		}
	}
}
