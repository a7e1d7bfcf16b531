package proficienthmac

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/proficient-hmac/proficient-hmac/internal/standin"
	"google.golang.org/api/option"
)

// callWithAppCheck asks for testUID's HMAC with an App Check token ("" for none).
func callWithAppCheck(t *testing.T, h *handler, appCheckToken string) *httptest.ResponseRecorder {
	headers := []string{"Authorization", "Bearer " + idToken(t, claimsFor(testUID, nil)), "Content-Type", "application/json"}
	if appCheckToken != "" {
		headers = append(headers, "X-Firebase-AppCheck", appCheckToken)
	}
	return call(h, "POST", `{"data":null}`, headers...)
}

// TestAppCheck verifies tokens signed by a test key against the JWKS the stand-in serves where
// the SDK fetches it.
func TestAppCheck(t *testing.T) {
	now := time.Now().Unix()
	tests := []struct {
		name       string
		enforce    bool
		token      func() string
		wantCode   int
		wantStatus string // the log line's appCheck
		wantReason string
	}{
		{"valid, enforced", true, func() string { return google.AppCheckToken(google.AppCheckClaims(nil)) }, 200, appCheckValid, "ok"},
		{"missing, enforced", true, func() string { return "" }, 401, appCheckAbsent, "app_check_missing"},
		{"expired, enforced", true, func() string {
			return google.AppCheckToken(google.AppCheckClaims(map[string]any{"iat": now - 7200, "exp": now - 60}))
		}, 401, appCheckInvalid, "app_check_invalid"},
		{"another project, enforced", true, func() string {
			return google.AppCheckToken(google.AppCheckClaims(map[string]any{"aud": []string{"projects/999", "projects/other-project"}}))
		}, 401, appCheckInvalid, "app_check_invalid"},
		{"another key, enforced", true, func() string {
			return standin.SignJWT(otherKey, map[string]any{"alg": "RS256", "kid": standin.AppCheckKID, "typ": "JWT"}, google.AppCheckClaims(nil))
		}, 401, appCheckInvalid, "app_check_invalid"},
		{"string aud (the SDK panics), enforced", true, func() string {
			return google.AppCheckToken(google.AppCheckClaims(map[string]any{"aud": "projects/" + testProject}))
		}, 401, appCheckInvalid, "app_check_invalid"},
		{"no iss (the SDK panics), enforced", true, func() string {
			return google.AppCheckToken(google.AppCheckClaims(map[string]any{"iss": nil}))
		}, 401, appCheckInvalid, "app_check_invalid"},
		{"garbage, enforced", true, func() string { return "not-a-jwt" }, 401, appCheckInvalid, "app_check_invalid"},
		{"missing, not enforced", false, func() string { return "" }, 200, appCheckAbsent, "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, logs := newTestHandler(t, withAppCheck(tt.enforce, false), dependencies{})
			w := callWithAppCheck(t, h, tt.token())
			if w.Code != tt.wantCode {
				t.Fatalf("status: got %d, want %d (%s)", w.Code, tt.wantCode, w.Body.String())
			}
			a := decode(t, w)
			if tt.wantCode == 200 {
				checkHMAC(t, a, protocolCallable, testUID, testUIDHMAC)
			}
			if tt.wantCode == 401 {
				if a.Error.Status != "UNAUTHENTICATED" || w.Header().Get("WWW-Authenticate") != "Bearer" {
					t.Errorf("got %q, WWW-Authenticate %q; want UNAUTHENTICATED, plain Bearer (the ID token was fine)",
						a.Error.Status, w.Header().Get("WWW-Authenticate"))
				}
			}
			wants := []string{`"reason":"` + tt.wantReason + `"`, `"appCheck":"` + tt.wantStatus + `"`}
			if strings.Contains(tt.name, "SDK panics") {
				wants = append(wants, "app check token with unexpected claims") // recovered, not some other refusal
			}
			for _, want := range wants {
				if !strings.Contains(logs.String(), want) {
					t.Errorf("log %q: want %s", logs.String(), want)
				}
			}
		})
	}
}

// TestAppCheckNotEnforced: an invalid token present is logged as a WARNING and the request goes
// on, as callables do; the client is made in the background on the first token seen.
func TestAppCheckNotEnforced(t *testing.T) {
	h, logs := newTestHandler(t, withAppCheck(false, false), dependencies{})
	if h.appCheck.client.Load() != nil {
		t.Fatal("App Check client made at start while not enforced")
	}
	invalid := google.AppCheckToken(google.AppCheckClaims(map[string]any{"aud": []string{"projects/other"}}))
	checkServed(t, callWithAppCheck(t, h, invalid), protocolCallable, testUID, testUIDHMAC)
	<-h.appCheck.ready // the client the first request began to make
	checkServed(t, callWithAppCheck(t, h, invalid), protocolCallable, testUID, testUIDHMAC)
	lines := logLines(t, logs.String())
	last := lines[len(lines)-1]
	if last["severity"] != "WARNING" || last["appCheck"] != appCheckInvalid || last["reason"] != "ok" {
		t.Errorf("log line %v: want a WARNING with appCheck invalid, reason ok", last)
	}
	if first := lines[0]; first["appCheck"] != appCheckUnverified {
		t.Errorf("first log line %v: want appCheck unverified while the client was being made", first)
	}
}

// TestAppCheckReplay consumes limited-use tokens through the App Check API's stand-in.
func TestAppCheckReplay(t *testing.T) {
	h, logs := newTestHandler(t, withAppCheck(true, true), dependencies{authOptions: []option.ClientOption{option.WithoutAuthentication()}})
	token := google.AppCheckToken(google.AppCheckClaims(nil))

	first := callWithAppCheck(t, h, token)
	t.Logf("first use: %d %s", first.Code, strings.TrimSpace(first.Body.String()))
	checkServed(t, first, protocolCallable, testUID, testUIDHMAC)
	replay := callWithAppCheck(t, h, token)
	t.Logf("replay:    %d %s", replay.Code, strings.TrimSpace(replay.Body.String()))
	checkRefused(t, replay, http.StatusUnauthorized, "UNAUTHENTICATED")
	if !strings.Contains(logs.String(), `"reason":"app_check_replayed"`) {
		t.Errorf("log %q: want reason app_check_replayed", logs.String())
	}

	google.Set(func(g *standin.Google) { g.ConsumeDown = true })
	down := callWithAppCheck(t, h, google.AppCheckToken(google.AppCheckClaims(map[string]any{"jti": "fresh"})))
	checkRefused(t, down, http.StatusServiceUnavailable, "UNAVAILABLE")
	if down.Header().Get("Retry-After") == "" {
		t.Errorf("App Check API down: got 503 without Retry-After")
	}
}

// TestAppCheckReplayRefusals: what else the App Check API answers. A token it will not consume
// (400: not a limited-use token) is the client's to mend, 401; the API refusing the function's
// own credentials (401, 403) is the operator's, 500; a quota or an outage, 503. None is a token
// accepted as consumed.
func TestAppCheckReplayRefusals(t *testing.T) {
	tests := []struct {
		name                   string
		apiStatus              int
		wantCode               int
		wantStatus, wantReason string
		wantSeverity           string
	}{
		{"a token that is not limited-use (400)", 400, 401, "UNAUTHENTICATED", "app_check_not_consumable", "WARNING"},
		{"the function's credentials refused (401)", 401, 500, "INTERNAL", "app_check_consume_refused", "ERROR"},
		{"the function's credentials refused (403)", 403, 500, "INTERNAL", "app_check_consume_refused", "ERROR"},
		{"over a quota (429)", 429, 503, "UNAVAILABLE", "app_check_consume_failed", "ERROR"},
		{"unavailable (503)", 503, 503, "UNAVAILABLE", "app_check_consume_failed", "ERROR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, logs := newTestHandler(t, withAppCheck(true, true), dependencies{authOptions: []option.ClientOption{option.WithoutAuthentication()}})
			google.Set(func(g *standin.Google) { g.ConsumeStatus = tt.apiStatus })
			w := callWithAppCheck(t, h, google.AppCheckToken(google.AppCheckClaims(map[string]any{"jti": t.Name()})))
			checkRefused(t, w, tt.wantCode, tt.wantStatus)
			wantHeader := map[int][2]string{401: {"WWW-Authenticate", "Bearer"}, 503: {"Retry-After", retryAfterSeconds}}[tt.wantCode]
			if wantHeader[0] != "" && w.Header().Get(wantHeader[0]) != wantHeader[1] {
				t.Errorf("%s: got %q, want %q", wantHeader[0], w.Header().Get(wantHeader[0]), wantHeader[1])
			}
			lines := logLines(t, logs.String())
			if line := lines[len(lines)-1]; line["reason"] != tt.wantReason || line["severity"] != tt.wantSeverity || line["appCheck"] != appCheckInvalid {
				t.Errorf("log line %v: want %s, reason %s, appCheck invalid", line, tt.wantSeverity, tt.wantReason)
			}
		})
	}
}

// TestAppCheckReplayNeedsCredentials: consuming tokens needs the runtime's credentials.
func TestAppCheckReplayNeedsCredentials(t *testing.T) {
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", t.TempDir()+"/missing.json")
	_, err := newHandler(t.Context(), withAppCheck(true, true), dependencies{logs: &lockedBuffer{}})
	if ce, ok := err.(*configError); !ok || ce.variable != "APP_CHECK_REPLAY_PROTECTION" {
		t.Fatalf("got %v, want a configuration error naming APP_CHECK_REPLAY_PROTECTION", err)
	}
}

// TestAppCheckKeysUnavailable: enforced, with App Check's JWKS unreachable, a request waits at
// most the bound and gets a 503, not a 401; once the JWKS is back, the next request is served.
func TestAppCheckKeysUnavailable(t *testing.T) {
	google.Set(func(g *standin.Google) { g.JWKSDown = true })
	h, _ := newTestHandler(t, withAppCheck(true, false), dependencies{verifyTimeout: time.Second})
	token := google.AppCheckToken(google.AppCheckClaims(nil))
	w := callWithAppCheck(t, h, token)
	checkRefused(t, w, http.StatusServiceUnavailable, "UNAVAILABLE")
	google.Set(func(g *standin.Google) { g.JWKSDown = false })
	checkServed(t, callWithAppCheck(t, h, token), protocolCallable, testUID, testUIDHMAC)
}

// TestAppCheckConsumeHangs: with the App Check API hanging (the stand-in answers 200 only after
// 30 s), a request is a 503 once its bound passes, whichever bound that is: the consuming call's
// own (as verification's), or the whole request's. A 200 here would mean it waited.
func TestAppCheckConsumeHangs(t *testing.T) {
	withoutAuth := []option.ClientOption{option.WithoutAuthentication()}
	tests := []struct {
		name string
		deps dependencies
	}{
		{"the consuming call's own bound", dependencies{authOptions: withoutAuth, verifyTimeout: 100 * time.Millisecond}},
		{"the request's bound", dependencies{authOptions: withoutAuth, verifyTimeout: time.Minute, requestTimeout: 100 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, logs := newTestHandler(t, withAppCheck(true, true), tt.deps)
			google.Set(func(g *standin.Google) { g.ConsumeDelay = 30 * time.Second })
			w := callWithAppCheck(t, h, google.AppCheckToken(google.AppCheckClaims(map[string]any{"jti": t.Name()})))
			checkRefused(t, w, http.StatusServiceUnavailable, "UNAVAILABLE")
			if w.Header().Get("Retry-After") == "" {
				t.Errorf("503 without Retry-After")
			}
			if !strings.Contains(logs.String(), `"reason":"app_check_consume_failed"`) {
				t.Errorf("log %q: want reason app_check_consume_failed", logs.String())
			}
		})
	}
}

// TestOversizedAppCheckTokenIsNotParsed: a validly signed 1 MB X-Firebase-AppCheck (about the
// most a server takes) is refused when App Check is enforced, and logged as invalid when not,
// without being decoded: the SDK's decoding allocated megabytes for it, enforced or not.
func TestOversizedAppCheckTokenIsNotParsed(t *testing.T) {
	huge := google.AppCheckToken(google.AppCheckClaims(map[string]any{"pad": strings.Repeat("p", 750<<10)}))
	for _, enforce := range []bool{true, false} {
		t.Run(fmt.Sprintf("enforced %v", enforce), func(t *testing.T) {
			h, logs := newTestHandler(t, withAppCheck(enforce, false), dependencies{})
			if !enforce {
				h.appCheck.makeClient() // as after a first token: the SDK would decode the next
				<-h.appCheck.ready
			}
			req := httptest.NewRequest("POST", "/", strings.NewReader(`{"data":null}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+idToken(t, claimsFor(testUID, nil)))
			req.Header.Set("X-Firebase-AppCheck", huge)
			w := httptest.NewRecorder()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			h.ServeHTTP(w, req)
			runtime.ReadMemStats(&after)
			if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 256<<10 {
				t.Errorf("the request allocated %d KiB: want under 256 KiB, the token unread", allocated>>10)
			}
			a := decode(t, w)
			if enforce && (w.Code != http.StatusUnauthorized || a.Result != nil || !strings.Contains(logs.String(), `"reason":"app_check_too_large"`)) {
				t.Errorf("enforced: got %d %s; want 401 app_check_too_large", w.Code, w.Body.String())
			}
			if !enforce {
				checkHMAC(t, a, protocolCallable, testUID, testUIDHMAC)
				if line := logLines(t, logs.String())[0]; line["appCheck"] != appCheckInvalid || line["severity"] != "WARNING" {
					t.Errorf("not enforced: log line %v, want a WARNING with appCheck invalid", line)
				}
			}
		})
	}
}
