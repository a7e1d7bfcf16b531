package proficienthmac

import (
	"net/http"
	"strings"
	"testing"
)

func TestErrorHeaders(t *testing.T) {
	h, _ := newTestHandler(t, testConfig(), dependencies{})
	tests := []struct {
		name, method, auth string
		header, want       string
		wantCode           int
		wantStatus         string
	}{
		{"405 names the allowed methods", "PUT", "", "Allow", "GET, POST, OPTIONS", 405, "UNIMPLEMENTED"},
		{"401 without a token: RFC 6750, no error code", "POST", "", "WWW-Authenticate", "Bearer", 401, "UNAUTHENTICATED"},
		{"401 with a bad token", "POST", "Bearer x.y.z", "WWW-Authenticate", `Bearer error="invalid_token"`, 401, "UNAUTHENTICATED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			headers := []string{}
			if tt.auth != "" {
				headers = append(headers, "Authorization", tt.auth)
			}
			w := call(h, tt.method, "", headers...)
			if got := w.Header().Get(tt.header); got != tt.want {
				t.Errorf("%s: got %q, want %q", tt.header, got, tt.want)
			}
			checkRefused(t, w, tt.wantCode, tt.wantStatus)
		})
	}
}

// TestStreamingCallable: a callable POST with Accept: text/event-stream, as .stream() sends it,
// is answered as onCall answers it: 200 and one event holding the result or the error, so the
// SDK's stream settles either way. A refusal sent in a 200 is still logged as one: a WARNING
// with its reason, beside the status sent.
func TestStreamingCallable(t *testing.T) {
	h, logs := newTestHandler(t, testConfig(), dependencies{})
	bearer := "Bearer " + idToken(t, claimsFor(testUID, nil))
	tests := []struct {
		name, body, auth, accept string
		want                     string // the event's data, or "" for a plain JSON answer
		severity, reason         string // of the request's log line
	}{
		{"result", `{"data":null}`, bearer, "text/event-stream",
			`{"result":{"hmac":"` + testUIDHMAC + `","userExternalId":"` + testUID + `"}}`, "INFO", "ok"},
		{"another user's ID", `{"data":{"userExternalId":"someone-else"}}`, bearer, "text/event-stream",
			`{"error":{"status":"PERMISSION_DENIED","message":"The HMAC is issued only for the signed-in user's UID; userExternalId must be that UID or absent."}}`,
			"WARNING", "external_id_mismatch"},
		{"signed out", `{"data":null}`, "", "text/event-stream",
			`{"error":{"status":"UNAUTHENTICATED","message":"Sign in first: send the user's Firebase ID token as Authorization: Bearer \u003ctoken\u003e."}}`,
			"WARNING", "no_token"},
		{"bad body", `{"data":null,"data":null}`, bearer, "text/event-stream",
			`{"error":{"status":"INVALID_ARGUMENT","message":"The body names a member twice in one object: send each name once."}}`,
			"WARNING", "duplicate_name"},
		{"Accept matched exactly, as onCall does", `{"data":null}`, bearer, "text/event-stream, */*", "", "INFO", "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			headers := []string{"Origin", testOrigin, "Content-Type", "application/json", "Accept", tt.accept}
			if tt.auth != "" {
				headers = append(headers, "Authorization", tt.auth)
			}
			w := call(h, "POST", tt.body, headers...)
			lines := logLines(t, logs.String())
			line := lines[len(lines)-1]
			httpRequest, _ := line["httpRequest"].(map[string]any)
			if line["severity"] != tt.severity || line["reason"] != tt.reason || httpRequest["status"] != float64(200) {
				t.Errorf("log line %v: want %s, reason %s, status 200", line, tt.severity, tt.reason)
			}
			if tt.want == "" {
				if got := w.Header().Get("Content-Type"); got != "application/json; charset=utf-8" {
					t.Fatalf("Content-Type: got %q, want a plain JSON answer", got)
				}
				checkServed(t, w, protocolCallable, testUID, testUIDHMAC)
				return
			}
			if w.Code != http.StatusOK {
				t.Errorf("status: got %d, want 200 (onCall streams refusals)", w.Code)
			}
			if got, want := w.Body.String(), "data: "+tt.want+"\n\n"; got != want {
				t.Errorf("body: got %q, want %q", got, want)
			}
			for name, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-store",
				"Access-Control-Allow-Origin": testOrigin, "WWW-Authenticate": ""} {
				if got := w.Header().Get(name); got != want {
					t.Errorf("%s: got %q, want %q", name, got, want)
				}
			}
		})
	}
	if !strings.Contains(logs.String(), `"form":"stream"`) {
		t.Errorf("log %q: want the requests logged as form stream", logs.String())
	}
}
