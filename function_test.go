package proficienthmac

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proficient-hmac/proficient-hmac/internal/standin"
	"google.golang.org/api/option"
	"google.golang.org/grpc/codes"
)

// TestRequestWithoutBodyIsNotCancelledByTheBodyDeadline: through a real net/http server, a
// request without a body is not cut short by the body's read deadline (net/http reads such a
// connection in the background at once, and a deadline there cancels the request's context): it
// runs until its own bound, which ends it as a deadline, not as a cancellation.
func TestRequestWithoutBodyIsNotCancelledByTheBodyDeadline(t *testing.T) {
	h, logs := newTestHandler(t, withAppCheck(true, true), dependencies{
		authOptions:   []option.ClientOption{option.WithoutAuthentication()},
		verifyTimeout: time.Minute, requestTimeout: 300 * time.Millisecond, bodyTimeout: time.Millisecond})
	google.Set(func(g *standin.Google) { g.ConsumeDelay = 30 * time.Second })
	server := httptest.NewServer(h)
	defer server.Close()
	req, _ := http.NewRequest("POST", server.URL, nil)
	req.Header.Set("Authorization", "Bearer "+idToken(t, claimsFor(testUID, nil)))
	req.Header.Set("X-Firebase-AppCheck", google.AppCheckToken(google.AppCheckClaims(map[string]any{"jti": t.Name()})))
	resp, err := server.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"status":"UNAVAILABLE"`) || strings.Contains(string(body), testUIDHMAC) {
		t.Fatalf("got %d %s, want 503 UNAVAILABLE without an HMAC", resp.StatusCode, body)
	}
	if got := logs.String(); !strings.Contains(got, "deadline exceeded") || strings.Contains(got, "context canceled") {
		t.Errorf("log %q: want the request ended by its deadline, not cancelled", got)
	}
}

// BenchmarkHandler is one callable request through the whole handler: default configuration,
// logging on (through the batching writer), a really signed token, Google's keys cached. The
// request is built once with httptest and its body reset each time, so allocs/op are the
// handler's own, not httptest's.
func BenchmarkHandler(b *testing.B) {
	h, err := newHandler(b.Context(), testConfig(), dependencies{logs: newLogWriter(io.Discard)})
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"data":{"userExternalId":"` + testUID + `"}}`)
	reader := &resettableBody{}
	req := httptest.NewRequest("POST", "/api/proficient-hmac", reader)
	req.Header.Set("Authorization", "Bearer "+idToken(b, claimsFor(testUID, nil)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", testOrigin)
	req.Header.Set("X-Cloud-Trace-Context", "105445aa7843bc8bf206b12000100000/10;o=1") // Cloud Run sends one
	w := &statusWriter{header: http.Header{}}
	serve := func() {
		reader.Reset(body)
		clear(w.header)
		h.ServeHTTP(w, req)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
	serve() // fetch and cache the keys
	b.ReportAllocs()
	for b.Loop() {
		serve()
	}
}

type resettableBody struct{ bytes.Reader }

func (*resettableBody) Close() error { return nil }

// statusWriter keeps the headers and status of an answer and discards its body.
type statusWriter struct {
	header http.Header
	code   int
}

func (w *statusWriter) Header() http.Header { return w.header }

func (w *statusWriter) Write(p []byte) (int, error) { return len(p), nil }

func (w *statusWriter) WriteHeader(code int) { w.code = code }

func TestRequests(t *testing.T) {
	h, _ := newTestHandler(t, testConfig(), dependencies{})
	token := idToken(t, claimsFor(testUID, nil))
	bearer := "Bearer " + token
	json := "application/json"
	big := `{"userExternalId":"` + strings.Repeat("x", maxBody) + `"}`

	tests := []struct {
		name         string
		method       string
		body         string
		contentType  string
		auth         string
		wantCode     int
		wantStatus   string   // canonical status of an error
		wantProtocol protocol // of a 200
	}{
		{name: "REST POST, no body", method: "POST", auth: bearer, wantCode: 200},
		{name: "REST POST, own ID", method: "POST", body: `{"userExternalId":"` + testUID + `"}`, contentType: json, auth: bearer, wantCode: 200},
		{name: "REST POST, null ID", method: "POST", body: `{"userExternalId":null}`, contentType: json, auth: bearer, wantCode: 200},
		{name: "REST POST, empty object", method: "POST", body: `{}`, contentType: json, auth: bearer, wantCode: 200},
		{name: "REST POST, other keys ignored", method: "POST", body: `{"agentId":"ag_1","n":[1,2]}`, contentType: json, auth: bearer, wantCode: 200},
		{name: "REST POST, charset in content type", method: "POST", body: `{}`, contentType: "application/json; charset=utf-8", auth: bearer, wantCode: 200},
		{name: "REST POST, another user's ID", method: "POST", body: `{"userExternalId":"someone-else"}`, contentType: json, auth: bearer, wantCode: 403, wantStatus: "PERMISSION_DENIED"},
		{name: "REST POST, empty-string ID", method: "POST", body: `{"userExternalId":""}`, contentType: json, auth: bearer, wantCode: 403, wantStatus: "PERMISSION_DENIED"},
		{name: "REST POST, numeric ID", method: "POST", body: `{"userExternalId":42}`, contentType: json, auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "REST POST, object ID", method: "POST", body: `{"userExternalId":{"uid":"x"}}`, contentType: json, auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "GET, no body", method: "GET", auth: bearer, wantCode: 200},
		{name: "GET with body, like Proficient's example client", method: "GET", body: `{"userExternalId":"` + testUID + `"}`, contentType: json, auth: bearer, wantCode: 200},
		{name: "GET with another user's ID", method: "GET", body: `{"userExternalId":"someone-else"}`, contentType: json, auth: bearer, wantCode: 403, wantStatus: "PERMISSION_DENIED"},
		{name: "GET with a callable body", method: "GET", body: `{"data":null}`, contentType: json, auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "callable, null data", method: "POST", body: `{"data":null}`, contentType: json, auth: bearer, wantCode: 200, wantProtocol: protocolCallable},
		{name: "callable after white space", method: "POST", body: " \n\t{\"data\":null}", contentType: json, auth: bearer, wantCode: 200, wantProtocol: protocolCallable},
		{name: "another user's ID after white space", method: "POST", body: ` {"userExternalId":"someone-else"}`, contentType: json, auth: bearer, wantCode: 403, wantStatus: "PERMISSION_DENIED"},
		{name: "callable, empty data", method: "POST", body: `{"data":{}}`, contentType: json, auth: bearer, wantCode: 200, wantProtocol: protocolCallable},
		{name: "callable, own ID and other keys", method: "POST", body: `{"data":{"userExternalId":"` + testUID + `","x":1}}`, contentType: json, auth: bearer, wantCode: 200, wantProtocol: protocolCallable},
		{name: "callable, null ID", method: "POST", body: `{"data":{"userExternalId":null}}`, contentType: json, auth: bearer, wantCode: 200, wantProtocol: protocolCallable},
		{name: "callable, another user's ID", method: "POST", body: `{"data":{"userExternalId":"someone-else"}}`, contentType: json, auth: bearer, wantCode: 403, wantStatus: "PERMISSION_DENIED"},
		{name: "callable, boolean ID", method: "POST", body: `{"data":{"userExternalId":true}}`, contentType: json, auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "callable, string data", method: "POST", body: `{"data":"x"}`, contentType: json, auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "callable, array data", method: "POST", body: `{"data":[1]}`, contentType: json, auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "callable, extra keys", method: "POST", body: `{"data":null,"userExternalId":"x"}`, contentType: json, auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "malformed JSON", method: "POST", body: `{"data":`, contentType: json, auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "trailing garbage", method: "POST", body: `{} {}`, contentType: json, auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "JSON array", method: "POST", body: `[{"data":null}]`, contentType: json, auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "JSON null", method: "POST", body: `null`, contentType: json, auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "JSON string", method: "POST", body: `"x"`, contentType: json, auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "form content type", method: "POST", body: `{"data":null}`, contentType: "application/x-www-form-urlencoded", auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "text content type", method: "POST", body: `{}`, contentType: "text/plain", auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "no content type with a body", method: "POST", body: `{}`, auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "body over 64 KiB", method: "POST", body: big, contentType: json, auth: bearer, wantCode: 413, wantStatus: "INVALID_ARGUMENT"},
		{name: "body of exactly 64 KiB is judged as JSON", method: "POST", body: `{"x":"` + strings.Repeat("y", maxBody-8) + `"}`, contentType: json, auth: bearer, wantCode: 200},
		{name: "PUT", method: "PUT", body: `{}`, contentType: json, auth: bearer, wantCode: 405, wantStatus: "UNIMPLEMENTED"},
		{name: "DELETE", method: "DELETE", auth: bearer, wantCode: 405, wantStatus: "UNIMPLEMENTED"},
		{name: "PATCH", method: "PATCH", auth: bearer, wantCode: 405, wantStatus: "UNIMPLEMENTED"},
		{name: "shape before token: 405", method: "PUT", wantCode: 405, wantStatus: "UNIMPLEMENTED"},
		{name: "shape before token: 413", method: "POST", body: big, contentType: json, wantCode: 413, wantStatus: "INVALID_ARGUMENT"},
		{name: "shape before token: 400", method: "POST", body: `{`, contentType: json, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "no token", method: "POST", wantCode: 401, wantStatus: "UNAUTHENTICATED"},
		{name: "callable signed out", method: "POST", body: `{"data":null}`, contentType: json, wantCode: 401, wantStatus: "UNAUTHENTICATED"},
		{name: "lower-case scheme", method: "POST", auth: "bearer " + token, wantCode: 200},
		{name: "upper-case scheme", method: "POST", auth: "BEARER " + token, wantCode: 200},
		{name: "Basic scheme", method: "POST", auth: "Basic " + token, wantCode: 401, wantStatus: "UNAUTHENTICATED"},
		{name: "scheme only", method: "POST", auth: "Bearer", wantCode: 401, wantStatus: "UNAUTHENTICATED"},
		{name: "token without scheme", method: "POST", auth: token, wantCode: 401, wantStatus: "UNAUTHENTICATED"},
		{name: "garbage token", method: "POST", auth: "Bearer not.a.jwt", wantCode: 401, wantStatus: "UNAUTHENTICATED"},
		// A duplicate name anywhere is refused, whichever copy comes last (SPEC: Requests).
		{name: "REST, duplicate ID, own last", method: "POST", body: `{"userExternalId":"someone-else","userExternalId":"` + testUID + `"}`, contentType: json, auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "REST, duplicate ID, own first", method: "POST", body: `{"userExternalId":"` + testUID + `","userExternalId":"someone-else"}`, contentType: json, auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "REST, duplicate ID spelt with an escape", method: "POST", body: `{"userExternalId":"someone-else","userExternal\u0049d":"` + testUID + `"}`, contentType: json, auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "GET, duplicate ID", method: "GET", body: `{"userExternalId":"someone-else","userExternalId":"` + testUID + `"}`, contentType: json, auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "callable, duplicate ID in data", method: "POST", body: `{"data":{"userExternalId":"someone-else","userExternalId":"` + testUID + `"}}`, contentType: json, auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "callable, duplicate data", method: "POST", body: `{"data":{"userExternalId":"someone-else"},"data":null}`, contentType: json, auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "duplicate name deeper down", method: "POST", body: `{"data":{"x":{"a":1,"a":2}}}`, contentType: json, auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "REST, other keys' duplicates", method: "POST", body: `{"agentId":"a","agentId":"b"}`, contentType: json, auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "names match exactly: Data is REST", method: "POST", body: `{"Data":null}`, contentType: json, auth: bearer, wantCode: 200},
		{name: "names match exactly: USERExternalID is ignored", method: "POST", body: `{"USERExternalID":"someone-else"}`, contentType: json, auth: bearer, wantCode: 200},
		{name: "escaped name is decoded", method: "POST", body: `{"d\u0061ta":{"userExternal\u0049d":"someone-else"}}`, contentType: json, auth: bearer, wantCode: 403, wantStatus: "PERMISSION_DENIED"},
		{name: "invalid UTF-8", method: "POST", body: "{\"x\":\"\xff\"}", contentType: json, auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "token in the body is not read", method: "POST", body: `{"idToken":"` + token + `","token":"` + token + `"}`, contentType: json, wantCode: 401, wantStatus: "UNAUTHENTICATED"},
		// Strings as JSON.stringify writes them: a string cut inside an emoji has a lone surrogate.
		{name: "lone surrogate in other data", method: "POST", body: `{"data":{"x":"hi \ud83d"}}`, contentType: json, auth: bearer, wantCode: 200, wantProtocol: protocolCallable},
		{name: "lone surrogate as the ID", method: "POST", body: `{"data":{"userExternalId":"\ud83d"}}`, contentType: json, auth: bearer, wantCode: 403, wantStatus: "PERMISSION_DENIED"},
		{name: "lone surrogate, REST", method: "POST", body: `{"x":"\udc00 cut"}`, contentType: json, auth: bearer, wantCode: 200},
		{name: "surrogate pair", method: "POST", body: `{"data":{"x":"\ud83d\ude00"}}`, contentType: json, auth: bearer, wantCode: 200, wantProtocol: protocolCallable},
		{name: "names apart only by lone surrogates are one name", method: "POST", body: `{"data":{"a\ud800":1,"a\udbff":2}}`, contentType: json, auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		// Content-Type by RFC 2045's grammar, in UTF-8 only.
		{name: "content type, empty parameter", method: "POST", body: `{"data":null}`, contentType: "application/json;;charset=utf-8", auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "content type, charset without a value", method: "POST", body: `{"data":null}`, contentType: "application/json; charset", auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "content type, charset with an empty value", method: "POST", body: `{"data":null}`, contentType: "application/json; charset=", auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "content type, parameter without a name", method: "POST", body: `{"data":null}`, contentType: "application/json; =x", auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "content type, unterminated quote", method: "POST", body: `{"data":null}`, contentType: `application/json; a="b`, auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "content type, a list", method: "POST", body: `{"data":null}`, contentType: "application/json, text/plain", auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "content type, latin1", method: "POST", body: `{"data":null}`, contentType: "application/json; charset=latin1", auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "content type, quoted charset", method: "POST", body: `{"data":null}`, contentType: `application/json; charset="utf-8"`, auth: bearer, wantCode: 200, wantProtocol: protocolCallable},
		{name: "content type, upper-case charset", method: "POST", body: `{"data":null}`, contentType: "application/json;charset=UTF-8", auth: bearer, wantCode: 200, wantProtocol: protocolCallable},
		{name: "content type, other parameter", method: "POST", body: `{"data":null}`, contentType: "application/json; foo=bar", auth: bearer, wantCode: 200, wantProtocol: protocolCallable},
		// The Android and iOS SDKs send a Long or Int64 argument wrapped; onCall decodes it to a number.
		{name: "callable, Int64 data", method: "POST", body: `{"data":{"@type":"type.googleapis.com/google.protobuf.Int64Value","value":"5"}}`, contentType: json, auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "callable, UInt64 data", method: "POST", body: `{"data":{"@type":"type.googleapis.com/google.protobuf.UInt64Value","value":"5"}}`, contentType: json, auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "callable, Int64 member", method: "POST", body: `{"data":{"n":{"@type":"type.googleapis.com/google.protobuf.Int64Value","value":"9007199254740993"}}}`, contentType: json, auth: bearer, wantCode: 200, wantProtocol: protocolCallable},
		{name: "callable, Int64 ID", method: "POST", body: `{"data":{"userExternalId":{"@type":"type.googleapis.com/google.protobuf.Int64Value","value":"1"}}}`, contentType: json, auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		// Where onCall misbehaves: its decoder recurses (500 past ~5,000 levels), and it reads
		// __proto__ as the object's prototype. Here such data is just data.
		{name: "data nested 6,000 levels", method: "POST", body: `{"data":{"x":` + strings.Repeat("[", 6000) + strings.Repeat("]", 6000) + `}}`, contentType: json, auth: bearer, wantCode: 200, wantProtocol: protocolCallable},
		{name: "data nested 12,000 levels", method: "POST", body: `{"data":{"x":` + strings.Repeat("[", 12000) + strings.Repeat("]", 12000) + `}}`, contentType: json, auth: bearer, wantCode: 400, wantStatus: "INVALID_ARGUMENT"},
		{name: "__proto__ is just a member", method: "POST", body: `{"data":{"__proto__":{"userExternalId":"someone-else"}}}`, contentType: json, auth: bearer, wantCode: 200, wantProtocol: protocolCallable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			headers := []string{"Origin", testOrigin}
			if tt.contentType != "" {
				headers = append(headers, "Content-Type", tt.contentType)
			}
			if tt.auth != "" {
				headers = append(headers, "Authorization", tt.auth)
			}
			w := call(h, tt.method, tt.body, headers...)
			if w.Code != tt.wantCode {
				t.Fatalf("status: got %d, want %d (body %.200q)", w.Code, tt.wantCode, w.Body.String())
			}
			checkCommonHeaders(t, w, true)
			a := decode(t, w)
			if tt.wantCode == 200 {
				checkHMAC(t, a, tt.wantProtocol, testUID, testUIDHMAC)
				return
			}
			if a.Error == nil || a.Error.Status != tt.wantStatus {
				t.Fatalf("got %q, want error status %q", w.Body.String(), tt.wantStatus)
			}
			if a.Error.Message == "" || strings.Contains(w.Body.String(), token) || strings.Contains(w.Body.String(), testSecret) {
				t.Errorf("error message %q: want a plain sentence without token or secret", a.Error.Message)
			}
			if strings.Contains(w.Body.String(), testUIDHMAC) {
				t.Errorf("refusal %s holds the HMAC", w.Body.String())
			}
		})
	}
}

func TestTwoAuthorizationHeadersAreRefused(t *testing.T) {
	h, _ := newTestHandler(t, testConfig(), dependencies{})
	token := idToken(t, claimsFor(testUID, nil))
	w := call(h, "POST", "", "Authorization", "Bearer "+token, "Authorization", "Bearer "+token)
	checkRefused(t, w, http.StatusUnauthorized, "UNAUTHENTICATED")
}

func TestTokenInQueryOrCookieIsNotRead(t *testing.T) {
	h, _ := newTestHandler(t, testConfig(), dependencies{})
	token := idToken(t, claimsFor(testUID, nil))
	req := httptest.NewRequest("POST", "/api/proficient-hmac?token="+token+"&idToken="+token+"&access_token="+token, nil)
	req.AddCookie(&http.Cookie{Name: "__session", Value: token})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	checkRefused(t, w, http.StatusUnauthorized, "UNAUTHENTICATED")
}

// TestRequestWithoutBody: a request built without a Body (net/http's server always sets one)
// is an empty body, not a panic.
func TestRequestWithoutBody(t *testing.T) {
	h, _ := newTestHandler(t, testConfig(), dependencies{})
	r := &http.Request{Method: "POST", URL: &url.URL{Path: "/"}, Header: http.Header{
		"Authorization": {"Bearer " + idToken(t, claimsFor(testUID, nil))}}}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	checkServed(t, w, protocolREST, testUID, testUIDHMAC)
}

// TestRequestDeadlineHoldsWhateverHangs: each dependency on the request's path hangs in turn
// (until the caller gives up), and the request is still answered, a 503 with Retry-After and no
// HMAC, before its deadline passes: nothing on the path outlives it.
func TestRequestDeadlineHoldsWhateverHangs(t *testing.T) {
	const deadline = time.Second
	withoutAuth := []option.ClientOption{option.WithoutAuthentication()}
	revoked := testConfig()
	revoked.auth.checkRevoked = true
	hang := time.Hour
	tests := []struct {
		name    string
		cfg     config
		deps    dependencies
		hang    func(g *standin.Google)
		headers []string
	}{
		{"Google's keys, at start", testConfig(), dependencies{verifyTimeout: time.Minute}, func(g *standin.Google) { g.KeysDelay = hang }, nil},
		{"the Auth backend (CHECK_REVOKED)", revoked, dependencies{authOptions: withoutAuth, verifyTimeout: time.Minute}, func(g *standin.Google) { g.LookupDelay = hang }, nil},
		{"App Check's keys, enforced", withAppCheck(true, false), dependencies{verifyTimeout: time.Minute}, func(g *standin.Google) { g.JWKSDelay = hang },
			[]string{"X-Firebase-AppCheck", google.AppCheckToken(google.AppCheckClaims(nil))}},
		{"App Check's replay check", withAppCheck(true, true), dependencies{authOptions: withoutAuth, verifyTimeout: time.Minute}, func(g *standin.Google) { g.ConsumeDelay = hang },
			[]string{"X-Firebase-AppCheck", google.AppCheckToken(google.AppCheckClaims(map[string]any{"jti": "hang"}))}},
		{"Secret Manager, at start", secretManagerConfig(), dependencies{secretOptions: secretManager(t, testSecret, codes.OK)}, func(g *standin.Google) { g.SecretDelay = hang }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			google.Set(tt.hang)
			tt.deps.requestTimeout, tt.deps.startWait = deadline, time.Millisecond
			h, _ := newTestHandler(t, tt.cfg, tt.deps)
			headers := append([]string{"Authorization", "Bearer " + idToken(t, claimsFor(testUID, nil))}, tt.headers...)
			answered := make(chan *httptest.ResponseRecorder, 1)
			go func() { answered <- call(h, "POST", "", headers...) }()
			select {
			case w := <-answered:
				if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || strings.Contains(w.Body.String(), "hmac") {
					t.Errorf("got %d, Retry-After %q, %s; want 503 with Retry-After and no HMAC", w.Code, w.Header().Get("Retry-After"), w.Body.String())
				}
			case <-time.After(deadline + 5*time.Second):
				t.Fatalf("no answer %s after the request's deadline", 5*time.Second)
			}
		})
	}
}

// parseSeeds are request shapes for the fuzzers to start from.
var parseSeeds = []struct {
	method, contentType, body string
}{
	{"POST", "application/json", `{"data":null}`},
	{"POST", "application/json", `{"data":{"userExternalId":"u1","x":[1,{"y":"}"}]}}`},
	{"POST", "application/json; charset=utf-8", `{"userExternalId":"u1","agentId":"ag_1"}`},
	{"GET", "application/json", `{"userExternalId":null}`},
	{"GET", "application/json", `{"data":{}}`},
	{"POST", "application/json", `{"data":null,"x":1}`},
	{"POST", "application/json", `{"d\u0061ta":{"userExternal\u0049d":"u1"}}`},
	{"POST", "application/json", `{"Data":null,"USEREXTERNALID":"x"}`},
	{"POST", "application/json", `{"userExternalId":7}`},
	{"POST", "application/json", `{"data":"x"}`},
	{"POST", "application/json", `[{"data":null}]`},
	{"POST", "application/json", `{"data":`},
	{"POST", "text/plain", `{}`},
	{"POST", "", `{}`},
	{"PUT", "application/json", `{}`},
	{"POST", "application/json", " \n\t"},
	{"POST", "application/json", " \n {\"data\":{\"userExternalId\":\"someone-else\"}}"},
	{"POST", "application/json", `{"userExternalId":"\ud83d\udd11 \u00f1 \"q\""}`},
	{"POST", "application/json", `{"userExternalId":"fuzz-user-b","userExternalId":"fuzz-user-a"}`},
	{"POST", "application/json", `{"data":{"userExternalId":"fuzz-user-b","userExternal\u0049d":"fuzz-user-a"}}`},
}

// fuzzHandler is one handler for every FuzzHandler input: building one fetches keys.
var fuzzHandler = sync.OnceValue(func() *handler {
	h, err := newHandler(testContext(), testConfig(), dependencies{logs: io.Discard})
	if err != nil {
		panic(err)
	}
	return h
})

// The tokens FuzzHandler chooses from: only the first two are valid.
var fuzzTokens = sync.OnceValue(func() []string {
	now := time.Now().Unix()
	return []string{
		google.IDToken(google.Claims("fuzz-user-a", nil)),
		google.IDToken(google.Claims("fuzz-user-b", map[string]any{"firebase": map[string]any{"sign_in_provider": "anonymous"}})),
		google.IDToken(google.Claims("fuzz-user-a", map[string]any{"iat": now - 4000, "exp": now - 400})),
		standin.SignJWT(otherKey, map[string]any{"alg": "RS256", "kid": standin.KID}, google.Claims("fuzz-user-a", nil)),
		standin.SignJWT(nil, map[string]any{"alg": "none", "kid": standin.KID}, google.Claims("fuzz-user-a", nil)),
		google.IDToken(google.Claims("fuzz-user-a", map[string]any{"aud": "other-project"})),
	}
})

var fuzzUIDs = []string{"fuzz-user-a", "fuzz-user-b"}

// FuzzHandler drives the whole handler with any method, Authorization, Content-Type, Origin and
// body. Invariants: no panic; no 5xx for client input; every answer in the spec's JSON shape
// with the common headers; an HMAC only for a valid token, and only for that token's UID; none
// for a body that names a member twice. Every seed shape is tried with each valid token too, so
// a hostile body meets a token that would otherwise be served.
func FuzzHandler(f *testing.F) {
	for i, s := range parseSeeds {
		f.Add(s.method, uint8(i%8), "", s.contentType, "https://app.example.com", []byte(s.body))
		for choice := range uint8(len(fuzzUIDs)) {
			f.Add(s.method, choice, "", s.contentType, "https://app.example.com", []byte(s.body))
		}
	}
	f.Add("POST", uint8(0), "", "application/json", "", []byte(`{"data":{"userExternalId":"fuzz-user-b"}}`))
	f.Add("OPTIONS", uint8(7), "", "", "https://app.example.com", []byte(nil))
	f.Add("POST", uint8(6), "Bearer ", "", "", []byte(nil))
	f.Add("POST", uint8(6), "bearer x.y.z", "application/json", "null", []byte(`{}`))
	f.Fuzz(func(t *testing.T, method string, tokenChoice uint8, rawAuth, contentType, origin string, body []byte) {
		if !validHeaderValue(rawAuth) || !validHeaderValue(contentType) || !validHeaderValue(origin) {
			return // net/http never delivers these
		}
		h, tokens := fuzzHandler(), fuzzTokens()
		r := &http.Request{Method: method, URL: &url.URL{Path: "/api/proficient-hmac"}, Header: http.Header{},
			Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), RemoteAddr: "192.0.2.1:1"}
		validUID := ""
		switch choice := int(tokenChoice) % 8; {
		case choice < len(tokens):
			r.Header.Set("Authorization", "Bearer "+tokens[choice])
			if choice < len(fuzzUIDs) {
				validUID = fuzzUIDs[choice]
			}
		case choice == 6 && rawAuth != "":
			r.Header.Set("Authorization", rawAuth)
		}
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)

		if w.Code >= 500 {
			t.Fatalf("client input answered %d: %s", w.Code, w.Body.String())
		}
		if w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("Content-Type") != "application/json; charset=utf-8" {
			t.Fatalf("headers: %v", w.Header())
		}
		if w.Code == http.StatusNoContent {
			if method != http.MethodOptions || w.Body.Len() != 0 {
				t.Fatalf("204 for %s with body %q", method, w.Body.String())
			}
			return
		}
		a := decode(t, w)
		hmacValue, uid := a.HMAC, a.UserExternalID
		if a.Result != nil {
			hmacValue, uid = a.Result.HMAC, a.Result.UserExternalID
		}
		if w.Code != http.StatusOK {
			if a.Error == nil || hmacValue != "" || uid != "" {
				t.Fatalf("%d without the error shape: %s", w.Code, w.Body.String())
			}
			return
		}
		if validUID == "" {
			t.Fatalf("200 without a valid token: %s", w.Body.String())
		}
		if name := duplicateName(body); name != "" {
			t.Fatalf("200 for a body naming %q twice: %s", name, body)
		}
		if uid != validUID || hmacValue != newHMACKey([]byte(testSecret)).sign(validUID) {
			t.Fatalf("200 for %q with token of %q: %s", uid, validUID, w.Body.String())
		}
	})
}

// duplicateName is a member name given twice in one object of body (names compared once their
// escapes are decoded), read with encoding/json's tokenizer, not the handler's decoder; "" if
// none, or if body is not JSON.
func duplicateName(body []byte) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	var open []map[string]bool // the names seen in each object or array (nil) open around the token
	expectName := false
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		switch tok {
		case json.Delim('{'):
			open = append(open, map[string]bool{})
		case json.Delim('['):
			open = append(open, nil)
		case json.Delim('}'), json.Delim(']'):
			open = open[:len(open)-1]
		default:
			if name, ok := tok.(string); ok && expectName {
				if open[len(open)-1][name] {
					return name
				}
				open[len(open)-1][name] = true
				expectName = false
				continue
			}
		}
		// In an object, what follows a member's value (or the opening brace) is a name.
		expectName = len(open) > 0 && open[len(open)-1] != nil
	}
}

// validHeaderValue is what net/http's parser lets through: no control characters but tab.
func validHeaderValue(v string) bool {
	return !strings.ContainsFunc(v, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f })
}

func testContext() context.Context { return context.Background() }

// TestSoak sends a fixed number of requests from many concurrent clients through a real HTTP
// server: valid tokens of several users mixed with garbage, forged and expired ones. Every
// valid answer must be that user's HMAC, every other a 401, none a 5xx; afterwards goroutines
// and heap must be back to where they were.
func TestSoak(t *testing.T) {
	const clients, perClient = 32, 125
	h, _ := newTestHandler(t, testConfig(), dependencies{logs: io.Discard})
	now := time.Now().Unix()
	type kind struct {
		token string
		uid   string // "" for a token that must be refused
	}
	var kinds []kind
	for i := range 8 {
		uid := fmt.Sprintf("soak-user-%d", i)
		kinds = append(kinds, kind{google.IDToken(google.Claims(uid, nil)), uid})
	}
	kinds = append(kinds,
		kind{"not.a.token", ""},
		kind{standin.SignJWT(otherKey, map[string]any{"alg": "RS256", "kid": standin.KID}, google.Claims("soak-user-0", nil)), ""},
		kind{google.IDToken(google.Claims("soak-user-1", map[string]any{"iat": now - 4000, "exp": now - 400})), ""},
		kind{google.IDToken(google.Claims("soak-user-2", map[string]any{"aud": "other-project"})), ""},
	)
	want := map[string]string{}
	for _, k := range kinds {
		if k.uid != "" {
			want[k.uid] = newHMACKey([]byte(testSecret)).sign(k.uid)
		}
	}

	runtime.GC()
	goroutinesBefore := runtime.NumGoroutine()
	var heapBefore runtime.MemStats
	runtime.ReadMemStats(&heapBefore)

	server := httptest.NewServer(h)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	var (
		mu       sync.Mutex
		counts   = map[int]int{}
		failures []string
		wg       sync.WaitGroup
	)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perClient {
				k := kinds[(c*perClient+i)%len(kinds)]
				code, got, err := soakCall(client, server.URL, k.token, i%2 == 0)
				mu.Lock()
				counts[code]++
				switch {
				case err != nil:
					failures = append(failures, err.Error())
				case k.uid != "" && (code != 200 || got != (hmacResult{want[k.uid], k.uid})):
					failures = append(failures, fmt.Sprintf("%s: got %d %+v", k.uid, code, got))
				case k.uid == "" && code != 401:
					failures = append(failures, fmt.Sprintf("bad token: got %d", code))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	client.CloseIdleConnections()
	server.Close()

	t.Logf("%d requests from %d clients: %v (HTTP status → count)", clients*perClient, clients, counts)
	if len(failures) > 0 {
		t.Fatalf("%d wrong answers, first: %s", len(failures), failures[0])
	}
	if counts[200]+counts[401] != clients*perClient {
		t.Fatalf("status counts %v: want only 200 and 401", counts)
	}

	// Connections close asynchronously: give their goroutines a bounded chance to end.
	goroutinesAfter := runtime.NumGoroutine()
	for tries := 0; goroutinesAfter > goroutinesBefore && tries < 100; tries++ {
		time.Sleep(10 * time.Millisecond)
		goroutinesAfter = runtime.NumGoroutine()
	}
	runtime.GC()
	var heapAfter runtime.MemStats
	runtime.ReadMemStats(&heapAfter)
	t.Logf("goroutines %d → %d; heap in use %.1f → %.1f MiB", goroutinesBefore, goroutinesAfter,
		float64(heapBefore.HeapAlloc)/(1<<20), float64(heapAfter.HeapAlloc)/(1<<20))
	if goroutinesAfter > goroutinesBefore {
		t.Errorf("goroutines: %d after, %d before", goroutinesAfter, goroutinesBefore)
	}
	if heapAfter.HeapAlloc > heapBefore.HeapAlloc+4<<20 {
		t.Errorf("heap: %d bytes after, %d before", heapAfter.HeapAlloc, heapBefore.HeapAlloc)
	}
}

// soakCall asks for an HMAC over HTTP, REST or callable.
func soakCall(client *http.Client, url, token string, callable bool) (int, hmacResult, error) {
	body := `{"userExternalId":null}`
	if callable {
		body = `{"data":null}`
	}
	req, _ := http.NewRequest("POST", url+"/api/proficient-hmac", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, hmacResult{}, err
	}
	defer resp.Body.Close()
	var answer struct {
		hmacResult
		Result *hmacResult `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		return resp.StatusCode, hmacResult{}, err
	}
	if answer.Result != nil {
		return resp.StatusCode, *answer.Result, nil
	}
	return resp.StatusCode, answer.hmacResult, nil
}
