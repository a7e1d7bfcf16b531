package proficienthmac

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/proficient-hmac/proficient-hmac/internal/standin"
	"google.golang.org/api/option"
)

// TestTokens runs really signed tokens through the real Admin SDK.
func TestTokens(t *testing.T) {
	now := time.Now().Unix()
	anonymous := map[string]any{"sign_in_provider": "anonymous", "identities": map[string]any{}}
	tenant := func(id string) map[string]any {
		return map[string]any{"sign_in_provider": "password", "tenant": id, "identities": map[string]any{}}
	}
	noAnonymous := testConfig()
	noAnonymous.auth.allowAnonymous = false
	withTenant := testConfig()
	withTenant.auth.tenantID = "tenant-a"

	tests := []struct {
		name       string
		cfg        config
		token      func(t *testing.T) string
		wantCode   int
		wantReason string
	}{
		{"valid", testConfig(), func(t *testing.T) string { return idToken(t, claimsFor(testUID, nil)) }, 200, "ok"},
		// The SDK allows 300 s past exp; onCall allows none, and neither does the function.
		{"expired 10 s ago: within the SDK's 300 s skew", testConfig(), func(t *testing.T) string {
			return idToken(t, claimsFor(testUID, map[string]any{"iat": now - 3610, "exp": now - 10}))
		}, 401, "token_expired"},
		{"expiring in a minute", testConfig(), func(t *testing.T) string {
			return idToken(t, claimsFor(testUID, map[string]any{"iat": now - 3540, "exp": now + 60}))
		}, 200, "ok"},
		{"expired 400 s ago", testConfig(), func(t *testing.T) string {
			return idToken(t, claimsFor(testUID, map[string]any{"iat": now - 4000, "exp": now - 400}))
		}, 401, "token_expired"},
		{"signed by another key", testConfig(), func(t *testing.T) string {
			return standin.SignJWT(otherKey, map[string]any{"alg": "RS256", "kid": standin.KID, "typ": "JWT"}, claimsFor(testUID, nil))
		}, 401, "token_invalid"},
		{"unknown kid", testConfig(), func(t *testing.T) string {
			return standin.SignJWT(google.SigningKey, map[string]any{"alg": "RS256", "kid": "key-2", "typ": "JWT"}, claimsFor(testUID, nil))
		}, 401, "token_invalid"},
		{"no kid", testConfig(), func(t *testing.T) string {
			return standin.SignJWT(google.SigningKey, map[string]any{"alg": "RS256", "typ": "JWT"}, claimsFor(testUID, nil))
		}, 401, "token_invalid"},
		{"alg none, unsigned", testConfig(), func(t *testing.T) string {
			return standin.SignJWT(nil, map[string]any{"alg": "none", "kid": standin.KID, "typ": "JWT"}, claimsFor(testUID, nil))
		}, 401, "token_invalid"},
		{"RS256 header, signature stripped", testConfig(), func(t *testing.T) string {
			signed := idToken(t, claimsFor(testUID, nil))
			return signed[:strings.LastIndex(signed, ".")+1]
		}, 401, "token_invalid"},
		{"another project's audience", testConfig(), func(t *testing.T) string {
			return idToken(t, claimsFor(testUID, map[string]any{"aud": "other-project"}))
		}, 401, "wrong_project"},
		{"another issuer", testConfig(), func(t *testing.T) string {
			return idToken(t, claimsFor(testUID, map[string]any{"iss": "https://securetoken.google.com/other-project"}))
		}, 401, "token_invalid"},
		{"issued 400 s in the future", testConfig(), func(t *testing.T) string {
			return idToken(t, claimsFor(testUID, map[string]any{"iat": now + 400, "exp": now + 4000}))
		}, 401, "token_invalid"},
		{"empty sub", testConfig(), func(t *testing.T) string { return idToken(t, claimsFor("", nil)) }, 401, "token_invalid"},
		{"sub over 128 bytes", testConfig(), func(t *testing.T) string {
			return idToken(t, claimsFor(strings.Repeat("u", 129), nil))
		}, 401, "token_invalid"},
		{"anonymous, allowed by default", testConfig(), func(t *testing.T) string {
			return idToken(t, claimsFor(testUID, map[string]any{"firebase": anonymous}))
		}, 200, "ok"},
		{"anonymous with ALLOW_ANONYMOUS=false", noAnonymous, func(t *testing.T) string {
			return idToken(t, claimsFor(testUID, map[string]any{"firebase": anonymous}))
		}, 403, "anonymous_refused"},
		{"signed-in user with ALLOW_ANONYMOUS=false", noAnonymous, func(t *testing.T) string {
			return idToken(t, claimsFor(testUID, nil))
		}, 200, "ok"},
		{"the configured tenant", withTenant, func(t *testing.T) string {
			return idToken(t, claimsFor(testUID, map[string]any{"firebase": tenant("tenant-a")}))
		}, 200, "ok"},
		{"another tenant", withTenant, func(t *testing.T) string {
			return idToken(t, claimsFor(testUID, map[string]any{"firebase": tenant("tenant-b")}))
		}, 401, "wrong_tenant"},
		{"no tenant when one is configured", withTenant, func(t *testing.T) string {
			return idToken(t, claimsFor(testUID, nil))
		}, 401, "wrong_tenant"},
		{"a tenant's token when none is configured", testConfig(), func(t *testing.T) string {
			return idToken(t, claimsFor(testUID, map[string]any{"firebase": tenant("tenant-a")}))
		}, 401, "wrong_tenant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, logs := newTestHandler(t, tt.cfg, dependencies{})
			token := tt.token(t)
			w := call(h, "POST", "", "Authorization", "Bearer "+token)
			if w.Code != tt.wantCode {
				t.Fatalf("status: got %d, want %d (%s)", w.Code, tt.wantCode, w.Body.String())
			}
			a := decode(t, w)
			if tt.wantCode == 200 {
				checkHMAC(t, a, protocolREST, testUID, testUIDHMAC)
			} else if tt.wantCode == 401 && a.Error.Status != "UNAUTHENTICATED" || tt.wantCode == 403 && a.Error.Status != "PERMISSION_DENIED" {
				t.Errorf("status: got %q for HTTP %d", a.Error.Status, tt.wantCode)
			}
			if want := `"reason":"` + tt.wantReason + `"`; !strings.Contains(logs.String(), want) {
				t.Errorf("log %q: want %s", logs.String(), want)
			}
			if strings.Contains(logs.String(), token) {
				t.Errorf("log contains the token")
			}
		})
	}
}

func TestExpiredTokenSaysSo(t *testing.T) {
	h, _ := newTestHandler(t, testConfig(), dependencies{})
	now := time.Now().Unix()
	w := call(h, "POST", "", "Authorization", "Bearer "+idToken(t, claimsFor(testUID, map[string]any{"iat": now - 4000, "exp": now - 400})))
	if msg := decode(t, w).Error.Message; !strings.Contains(msg, "expired") {
		t.Errorf("message %q: want it to say the token expired", msg)
	}
}

// TestRevocation uses VerifyIDTokenAndCheckRevoked against the identity toolkit stand-in.
func TestRevocation(t *testing.T) {
	cfg := testConfig()
	cfg.auth.checkRevoked = true
	issued := time.Now().Unix() - 60
	token := func(t *testing.T) string {
		return idToken(t, claimsFor(testUID, map[string]any{"iat": issued, "auth_time": issued}))
	}
	tests := []struct {
		name       string
		user       *standin.User
		lookupDown bool
		wantCode   int
		wantReason string
	}{
		{"active user", &standin.User{}, false, 200, "ok"},
		{"tokens revoked after issue", &standin.User{ValidSince: issued + 1}, false, 401, "token_revoked"},
		{"tokens revoked before issue", &standin.User{ValidSince: issued - 1}, false, 200, "ok"},
		{"disabled user", &standin.User{Disabled: true}, false, 403, "user_disabled"},
		{"deleted user", nil, false, 401, "token_invalid"},
		{"identity toolkit down", &standin.User{}, true, 503, "auth_backend_unavailable"},
		{"identity toolkit over its quota", &standin.User{}, false, 503, "auth_backend_exhausted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The SDK retries a 503 for ≈7.5 s; the bound cuts that short.
			h, logs := newTestHandler(t, cfg, dependencies{authOptions: []option.ClientOption{option.WithoutAuthentication()}, verifyTimeout: time.Second})
			google.Set(func(g *standin.Google) {
				g.LookupDown = tt.lookupDown
				g.LookupQuota = tt.wantReason == "auth_backend_exhausted"
				if tt.user != nil {
					g.Users[testUID] = *tt.user
				}
			})
			w := call(h, "POST", "", "Authorization", "Bearer "+token(t))
			if tt.wantCode == 200 {
				checkServed(t, w, protocolREST, testUID, testUIDHMAC)
			} else {
				checkRefused(t, w, tt.wantCode, map[int]string{401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 503: "UNAVAILABLE"}[tt.wantCode])
			}
			if want := `"reason":"` + tt.wantReason + `"`; !strings.Contains(logs.String(), want) {
				t.Errorf("log %q: want %s", logs.String(), want)
			}
			if tt.wantCode == 503 && w.Header().Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
		})
	}
}

// TestAuthBackendRefusals: with CHECK_REVOKED, the Auth backend refusing the function's own
// credentials (its service account lacks the role) is the operator's to fix: 500 INTERNAL,
// logged as an ERROR. It is not the user's bad token (401, which signs them out) nor an outage
// (503, which asks them to retry).
func TestAuthBackendRefusals(t *testing.T) {
	cfg := testConfig()
	cfg.auth.checkRevoked = true
	tests := []struct {
		name         string
		lookupStatus int
	}{
		{"permission denied (403)", 403},
		{"credentials not accepted (401)", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, logs := newTestHandler(t, cfg, dependencies{authOptions: []option.ClientOption{option.WithoutAuthentication()}, verifyTimeout: time.Second})
			google.Set(func(g *standin.Google) {
				g.Users[testUID] = standin.User{}
				g.LookupStatus = tt.lookupStatus
			})
			w := call(h, "POST", "", "Authorization", "Bearer "+idToken(t, claimsFor(testUID, nil)))
			checkRefused(t, w, http.StatusInternalServerError, "INTERNAL")
			for _, name := range []string{"Retry-After", "WWW-Authenticate"} {
				if got := w.Header().Get(name); got != "" {
					t.Errorf("%s: got %q, want none", name, got)
				}
			}
			lines := logLines(t, logs.String())
			if line := lines[len(lines)-1]; line["reason"] != "auth_backend_refused" || line["severity"] != "ERROR" {
				t.Errorf("log line %v: want an ERROR, reason auth_backend_refused", line)
			}
		})
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct {
		header []string
		want   string
	}{
		{[]string{"Bearer abc"}, "abc"},
		{[]string{"bearer abc"}, "abc"},
		{[]string{"Bearer  abc "}, "abc"},
		{[]string{"Bearer"}, ""},
		{[]string{"Bearer "}, ""},
		{[]string{"Token abc"}, ""},
		{[]string{"abc"}, ""},
		{[]string{"Bearer a", "Bearer b"}, ""},
		{nil, ""},
	}
	for _, tt := range tests {
		h := http.Header{"Authorization": tt.header}
		if got := bearerToken(h); got != tt.want {
			t.Errorf("bearerToken(%q): got %q, want %q", tt.header, got, tt.want)
		}
	}
}

// TestExpiredTokenMessages: a token the function finds expired (within the SDK's 300 s) is
// answered as the SDK's own expired case is, so clients refresh it alike.
func TestExpiredTokenMessages(t *testing.T) {
	h, _ := newTestHandler(t, testConfig(), dependencies{})
	now := time.Now().Unix()
	bySDK := call(h, "POST", "", "Authorization", "Bearer "+idToken(t, claimsFor(testUID, map[string]any{"iat": now - 4000, "exp": now - 400})))
	byFunction := call(h, "POST", "", "Authorization", "Bearer "+idToken(t, claimsFor(testUID, map[string]any{"iat": now - 3610, "exp": now - 10})))
	if bySDK.Code != 401 || byFunction.Code != 401 || bySDK.Body.String() != byFunction.Body.String() ||
		bySDK.Header().Get("WWW-Authenticate") != byFunction.Header().Get("WWW-Authenticate") {
		t.Errorf("expired 10 s ago: got %d %q, want the SDK's expired answer %d %q",
			byFunction.Code, byFunction.Body.String(), bySDK.Code, bySDK.Body.String())
	}
}

// TestOversizedTokenRefusedBeforeTheSDK: a validly signed token over 16 KiB (custom claims are
// at most 1000 bytes) is refused without the SDK decoding it; one just under is served.
func TestOversizedTokenRefusedBeforeTheSDK(t *testing.T) {
	h, logs := newTestHandler(t, testConfig(), dependencies{})
	// padded is a token of at most n bytes, padded by a custom claim to within a few bytes of n.
	padded := func(n int) string {
		base := len(idToken(t, claimsFor(testUID, map[string]any{"pad": ""})))
		for pad := (n - base) * 3 / 4; ; pad-- {
			if token := idToken(t, claimsFor(testUID, map[string]any{"pad": strings.Repeat("p", pad)})); len(token) <= n {
				return token
			}
		}
	}
	under := padded(maxIDToken)
	if len(under) < maxIDToken-8 {
		t.Fatalf("bad test: the token under the bound is %d bytes", len(under))
	}
	over := idToken(t, claimsFor(testUID, map[string]any{"pad": strings.Repeat("p", maxIDToken)}))
	checkServed(t, call(h, "POST", "", "Authorization", "Bearer "+under), protocolREST, testUID, testUIDHMAC)
	checkRefused(t, call(h, "POST", "", "Authorization", "Bearer "+over), http.StatusUnauthorized, "UNAUTHENTICATED")
	if !strings.Contains(logs.String(), `"reason":"token_too_large"`) {
		t.Errorf("log %q: want reason token_too_large", logs.String())
	}
}

// TestAnotherProjectSaysWhich: a token for another project says which project it is for and
// which the function serves, since signing in again never mends it; an aud that is not shaped
// like a project ID is not repeated.
func TestAnotherProjectSaysWhich(t *testing.T) {
	h, _ := newTestHandler(t, testConfig(), dependencies{})
	tests := []struct {
		aud, want, notWant string
	}{
		{"demo-myapp", "The ID token is for project demo-myapp, but this function serves " + testProject + ": ", ""},
		{"<b>not-a-project</b>", "The ID token is for another Firebase project, but this function serves " + testProject + ": ", "<b>"},
	}
	for _, tt := range tests {
		w := call(h, "POST", "", "Authorization", "Bearer "+idToken(t, claimsFor(testUID, map[string]any{"aud": tt.aud})))
		msg := decode(t, w).Error.Message
		if w.Code != http.StatusUnauthorized || !strings.HasPrefix(msg, tt.want) || tt.notWant != "" && strings.Contains(msg, tt.notWant) {
			t.Errorf("aud %q: got %d %q, want 401 %q…", tt.aud, w.Code, msg, tt.want)
		}
	}
}

// BenchmarkVerifyIDToken is the floor: the Admin SDK's verification alone, keys cached.
func BenchmarkVerifyIDToken(b *testing.B) {
	cfg := testConfig()
	verify, err := newVerifier(b.Context(), cfg.projectID, cfg.auth, false)
	if err != nil {
		b.Fatal(err)
	}
	token := idToken(b, claimsFor(testUID, nil))
	if _, err := verify(b.Context(), token); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := verify(b.Context(), token); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCheckRevokedNeedsCredentials: without Google credentials, CHECK_REVOKED cannot work, so
// the start is refused; plain verification needs none.
func TestCheckRevokedNeedsCredentials(t *testing.T) {
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", t.TempDir()+"/missing.json") // no credentials, and no metadata probe
	cfg := testConfig()
	if _, err := newHandler(context.Background(), cfg, dependencies{logs: &lockedBuffer{}}); err != nil {
		t.Fatalf("verification without credentials: got %v, want it to work", err)
	}
	cfg.auth.checkRevoked = true
	_, err := newHandler(context.Background(), cfg, dependencies{logs: &lockedBuffer{}})
	var ce *configError
	if !errors.As(err, &ce) || ce.variable != "CHECK_REVOKED" {
		t.Fatalf("got %v, want a configuration error naming CHECK_REVOKED", err)
	}
}
