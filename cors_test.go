package proficienthmac

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCORS(t *testing.T) {
	token := idToken(t, claimsFor(testUID, nil))
	only := testConfig()
	only.cors.origins = map[string]bool{testOrigin: true}
	tests := []struct {
		name     string
		cfg      config
		method   string
		origin   string
		auth     string
		wantCode int
		wantCORS bool
	}{
		{"preflight, any origin", testConfig(), "OPTIONS", testOrigin, "", 204, true},
		{"preflight, listed origin", only, "OPTIONS", testOrigin, "", 204, true},
		{"preflight, unlisted origin", only, "OPTIONS", "https://evil.example", "", 204, false},
		{"preflight, no origin", testConfig(), "OPTIONS", "", "", 204, false},
		{"POST, listed origin", only, "POST", testOrigin, "Bearer " + token, 200, true},
		{"POST, unlisted origin is served without CORS", only, "POST", "https://evil.example", "Bearer " + token, 200, false},
		{"401 carries CORS, so browsers see it", testConfig(), "POST", testOrigin, "", 401, true},
		{"405 carries CORS", testConfig(), "PUT", testOrigin, "", 405, true},
		{"no origin, no CORS", testConfig(), "POST", "", "Bearer " + token, 200, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := newTestHandler(t, tt.cfg, dependencies{})
			var headers []string
			if tt.origin != "" {
				headers = append(headers, "Origin", tt.origin)
			}
			if tt.auth != "" {
				headers = append(headers, "Authorization", tt.auth)
			}
			if tt.method == "OPTIONS" {
				headers = append(headers, "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization,content-type")
			}
			w := call(h, tt.method, "", headers...)
			if w.Code != tt.wantCode {
				t.Fatalf("status: got %d, want %d", w.Code, tt.wantCode)
			}
			if tt.wantCORS && tt.origin != testOrigin {
				t.Fatal("bad test: CORS is checked against testOrigin")
			}
			if tt.method == "OPTIONS" && tt.wantCORS {
				checkPreflight(t, w, "authorization, content-type")
				return
			}
			checkCommonHeaders(t, w, tt.wantCORS)
			switch tt.wantCode {
			case http.StatusOK:
				checkServed(t, w, protocolREST, testUID, testUIDHMAC)
				return
			case http.StatusUnauthorized:
				checkRefused(t, w, tt.wantCode, "UNAUTHENTICATED")
				return
			case http.StatusMethodNotAllowed:
				checkRefused(t, w, tt.wantCode, "UNIMPLEMENTED")
				return
			}
			if w.Body.Len() != 0 {
				t.Errorf("preflight body: got %q, want none", w.Body.String())
			}
			for _, name := range []string{"Access-Control-Allow-Headers", "Access-Control-Max-Age"} {
				if got := w.Header().Get(name); got != "" {
					t.Errorf("%s: got %q, want none", name, got)
				}
			}
		})
	}
}

// checkPreflight asserts an allowed preflight's answer, allowing wantHeaders ("" for none).
func checkPreflight(t *testing.T, w *httptest.ResponseRecorder, wantHeaders string) {
	t.Helper()
	if w.Code != http.StatusNoContent || w.Body.Len() != 0 {
		t.Errorf("got %d %q, want 204 without a body", w.Code, w.Body.String())
	}
	want := map[string]string{
		"Access-Control-Allow-Origin":   testOrigin,
		"Access-Control-Allow-Methods":  "GET, POST, OPTIONS",
		"Access-Control-Allow-Headers":  wantHeaders,
		"Access-Control-Max-Age":        "3600",
		"Access-Control-Expose-Headers": "Retry-After",
		"Vary":                          "Origin, Access-Control-Request-Headers",
		"Cache-Control":                 "no-store",
	}
	for name, value := range want {
		if got := w.Header().Get(name); got != value {
			t.Errorf("%s: got %q, want %q", name, got, value)
		}
	}
	if _, set := w.Header()["Access-Control-Allow-Headers"]; set && wantHeaders == "" {
		t.Errorf("Access-Control-Allow-Headers: set, want none")
	}
}

// TestPreflightAllowsRequestedHeaders: as onCall's cors middleware, a preflight from an allowed
// origin is allowed the headers it asks for (monitoring agents add their own), echoed only as
// valid header names and bounded.
func TestPreflightAllowsRequestedHeaders(t *testing.T) {
	h, _ := newTestHandler(t, testConfig(), dependencies{})
	long := strings.Repeat("x-long-header-name-0123456789,", 200) // 6,000 bytes
	tests := []struct {
		name      string
		requested []string // Access-Control-Request-Headers, each its own header line
		want      string
	}{
		{"the web SDK", []string{"authorization,content-type"}, "authorization, content-type"},
		{"Datadog RUM and New Relic", []string{"authorization,content-type,newrelic,x-datadog-origin,x-datadog-parent-id,x-datadog-sampling-priority,x-datadog-trace-id"},
			"authorization, content-type, newrelic, x-datadog-origin, x-datadog-parent-id, x-datadog-sampling-priority, x-datadog-trace-id"},
		{"X-Requested-With, spaces and case kept", []string{" X-Requested-With ,\tcontent-type"}, "X-Requested-With, content-type"},
		{"repeated header lines are one list", []string{"a", "b"}, "a, b"},
		{"none asked for", nil, ""},
		{"empty", []string{""}, ""},
		{"invalid names are not echoed", []string{"good, bad name, a:b, \"q\", ok"}, "good, ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			headers := []string{"Origin", testOrigin, "Access-Control-Request-Method", "POST"}
			for _, v := range tt.requested {
				headers = append(headers, "Access-Control-Request-Headers", v)
			}
			checkPreflight(t, call(h, "OPTIONS", "", headers...), tt.want)
		})
	}
	t.Run("bounded", func(t *testing.T) {
		w := call(h, "OPTIONS", "", "Origin", testOrigin, "Access-Control-Request-Headers", long)
		got := w.Header().Get("Access-Control-Allow-Headers")
		if len(got) > maxAllowedHeaders || !strings.HasPrefix(got, "x-long-header-name-0123456789, x-long") || strings.HasSuffix(got, ",") {
			t.Errorf("Access-Control-Allow-Headers: got %d bytes %.80q…, want a list of whole names within %d bytes", len(got), got, maxAllowedHeaders)
		}
	})
}
