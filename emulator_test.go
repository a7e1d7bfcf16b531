package proficienthmac

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// noMetadataServer points the start's metadata probe at a loopback server that is not Google's,
// so that no test looks metadata.google.internal up.
func noMetadataServer(t *testing.T) {
	t.Helper()
	notGoogle := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(notGoogle.Close)
	t.Setenv("GCE_METADATA_HOST", strings.TrimPrefix(notGoogle.URL, "http://"))
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

// TestEmulatorModeServesLoopbackOnly: against the emulator, a request whose Host is not this
// machine (DNS rebinding from a web page) is refused, and only loopback pages get CORS headers
// unless CORS_ALLOWED_ORIGINS is set.
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
	}{
		{"127.0.0.1 with a port", h, "POST", "127.0.0.1:8080", "", 200, false},
		{"127.0.0.1", h, "POST", "127.0.0.1", "", 200, false},
		{"another address in 127/8", h, "POST", "127.1.2.3:8080", "", 200, false},
		{"localhost", h, "POST", "localhost:8080", "", 200, false},
		{"LOCALHOST", h, "POST", "LOCALHOST:8080", "", 200, false},
		{"a name under .localhost", h, "POST", "app.localhost:8080", "", 200, false},
		{"[::1]", h, "POST", "[::1]:8080", "", 200, false},
		{"[::1] without a port", h, "POST", "[::1]", "", 200, false},
		{"a rebound public name", h, "POST", "attacker.example:8080", "", 403, false},
		{"a public name without a port", h, "POST", "attacker.example", "", 403, false},
		{"a name that starts like localhost", h, "POST", "localhost.attacker.example:8080", "", 403, false},
		{"a name that starts like 127.0.0.1", h, "POST", "127.0.0.1.attacker.example", "", 403, false},
		{"a LAN address", h, "POST", "192.168.1.20:8080", "", 403, false},
		{"0.0.0.0", h, "POST", "0.0.0.0:8080", "", 403, false},
		{"no Host", h, "POST", "", "", 403, false},
		{"a preflight to a rebound name", h, "OPTIONS", "attacker.example:8080", "http://attacker.example:8080", 403, false},
		{"a loopback page", h, "POST", "127.0.0.1:8080", "http://localhost:5173", 200, true},
		{"a loopback page by address", h, "POST", "127.0.0.1:8080", "http://127.0.0.1:5002", 200, true},
		{"a loopback preflight", h, "OPTIONS", "127.0.0.1:8080", "http://[::1]:5002", 204, true},
		{"a public page", h, "POST", "127.0.0.1:8080", testOrigin, 200, false},
		{"a public preflight", h, "OPTIONS", "127.0.0.1:8080", testOrigin, 204, false},
		{"an opaque origin", h, "POST", "127.0.0.1:8080", "null", 200, false},
		{"a public page, CORS_ALLOWED_ORIGINS=*", anyOrigin, "POST", "127.0.0.1:8080", testOrigin, 200, true},
		{"a rebound name, CORS_ALLOWED_ORIGINS=*", anyOrigin, "POST", "attacker.example:8080", testOrigin, 403, true},
		{"any Host without the emulator", production, "POST", "attacker.example:8080", "", 200, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/api/proficient-hmac", nil)
			r.Host = tt.host
			r.Header.Set("Authorization", bearer)
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
			if tt.wantCode == 403 {
				if a := decode(t, w); a.Error.Status != "PERMISSION_DENIED" || !strings.Contains(a.Error.Message, "loopback") {
					t.Errorf("got %+v, want PERMISSION_DENIED saying only loopback is served", a.Error)
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

func TestIsLoopbackOrigin(t *testing.T) {
	tests := []struct {
		origin string
		want   bool
	}{
		{"http://localhost:5173", true},
		{"https://localhost", true},
		{"http://127.0.0.1:5002", true},
		{"http://[::1]:5002", true},
		{"http://app.localhost:3000", true},
		{"https://app.example.com", false},
		{"http://localhost.example.com", false},
		{"null", false},
		{"file://", false},
		{"chrome-extension://abcdef", false},
		{"http://localhost:5173/path", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := isLoopbackOrigin(tt.origin); got != tt.want {
			t.Errorf("isLoopbackOrigin(%q): got %v, want %v", tt.origin, got, tt.want)
		}
	}
}
