package proficienthmac

import (
	"strings"
	"testing"
)

// TestSessionCookie: a session cookie forwarded as the bearer token is refused by the Admin SDK
// (its issuer is not securetoken), and the 401 says what it is and what to send instead.
func TestSessionCookie(t *testing.T) {
	tests := []struct {
		name        string
		iss         string
		wantReason  string
		wantMessage string
	}{
		{"a session cookie of this project", sessionCookieIssuer + testConfig().projectID, "session_cookie", "session cookie, not an ID token"},
		{"a session cookie of another project", sessionCookieIssuer + "other-project", "session_cookie", "session cookie, not an ID token"},
		{"an issuer that only resembles it", "https://session.firebase.google.com.example.com/" + testConfig().projectID, "token_invalid", "not valid for this app"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, logs := newTestHandler(t, testConfig(), dependencies{})
			w := call(h, "POST", "", "Authorization", "Bearer "+idToken(t, claimsFor(testUID, map[string]any{"iss": tt.iss})))
			if w.Code != 401 {
				t.Fatalf("status: got %d, want 401 (%s)", w.Code, w.Body.String())
			}
			a := decode(t, w)
			if a.Error.Status != "UNAUTHENTICATED" || !strings.Contains(a.Error.Message, tt.wantMessage) {
				t.Errorf("error: got %q %q, want UNAUTHENTICATED with %q", a.Error.Status, a.Error.Message, tt.wantMessage)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
				t.Errorf("WWW-Authenticate: got %q, want %q", got, `Bearer error="invalid_token"`)
			}
			if want := `"reason":"` + tt.wantReason + `"`; !strings.Contains(logs.String(), want) {
				t.Errorf("log %q: want %s", logs.String(), want)
			}
		})
	}
}

func TestIsSessionCookie(t *testing.T) {
	tests := []struct {
		token string
		want  bool
	}{
		{"eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL3Nlc3Npb24uZmlyZWJhc2UuZ29vZ2xlLmNvbS9wIn0.", true}, // iss https://session.firebase.google.com/p
		{"eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL3NlY3VyZXRva2VuLmdvb2dsZS5jb20vcCJ9.", false},       // iss https://securetoken.google.com/p
		{"eyJhbGciOiJub25lIn0.eyJpc3MiOjF9.", false},                                                   // iss 1
		{"not a JWT", false},
		{"a.!!!.c", false},
		{"a.b.c.d", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := isSessionCookie(tt.token); got != tt.want {
			t.Errorf("isSessionCookie(%q): got %v, want %v", tt.token, got, tt.want)
		}
	}
}
