package proficienthmac

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/proficient-hmac/proficient-hmac/internal/standin"
	"google.golang.org/api/option"
	"google.golang.org/grpc/codes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testSecret = "hsec_3xampleSecretForTests_9f2c"
	testUID    = "gtLIK8ELsHTr0Fajg28Ud9eFpJJ3"
	// testUIDHMAC = base64(HMAC-SHA256(testSecret, testUID)), computed with openssl and Node.
	testUIDHMAC = "PmtPnbeCUxwHpKTkdipsZNSt+ZsKrGui6ai4No2Z7VE="
	testOrigin  = "https://app.example.com"
)

// testConfig is the default configuration with a secret in the environment.
func testConfig() config {
	return config{projectID: testProject, secret: secretConfig{backend: &secretByValue, location: testSecret}, auth: authPolicy{allowAnonymous: true}}
}

// newTestHandler builds a handler as the function does at start, with the real Admin SDK talking
// to the Google stand-in. Its logs go to the returned buffer.
func newTestHandler(t *testing.T, cfg config, deps dependencies) (*handler, *lockedBuffer) {
	t.Helper()
	resetGoogle(t)
	logs := &lockedBuffer{}
	deps.logs = logs
	h, err := newHandler(context.Background(), cfg, deps)
	if err != nil {
		t.Fatalf("newHandler: %v", err)
	}
	t.Cleanup(func() {
		h.stop()
		waitForRead(h)
	})
	return h, logs
}

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// call sends one request through the handler. headers alternate name, value.
func call(h http.Handler, method, body string, headers ...string) *httptest.ResponseRecorder {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, "/api/proficient-hmac", r)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

type answer struct {
	HMAC           string `json:"hmac"`
	UserExternalID string `json:"userExternalId"`
	Result         *struct {
		HMAC           string `json:"hmac"`
		UserExternalID string `json:"userExternalId"`
	} `json:"result"`
	Error *struct {
		Status  string `json:"status"`
		Message string `json:"message"`
	} `json:"error"`
}

// decode reads an answer, failing the test on anything but the spec's JSON shapes.
func decode(t *testing.T, w *httptest.ResponseRecorder) answer {
	t.Helper()
	var a answer
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		t.Fatalf("body %q is not the spec's JSON: %v", w.Body.String(), err)
	}
	shapes := 0
	for _, present := range []bool{a.HMAC != "", a.Result != nil, a.Error != nil} {
		if present {
			shapes++
		}
	}
	if shapes != 1 {
		t.Fatalf("body %q: want exactly one of hmac, result, error", w.Body.String())
	}
	return a
}

// checkCommonHeaders asserts what every answer carries; withCORS for an allowed Origin.
func checkCommonHeaders(t *testing.T, w *httptest.ResponseRecorder, withCORS bool) {
	t.Helper()
	want := map[string]string{
		"Content-Type":           "application/json; charset=utf-8",
		"Cache-Control":          "no-store",
		"X-Content-Type-Options": "nosniff",
		"Vary":                   "Origin",
	}
	if withCORS {
		want["Access-Control-Allow-Origin"] = testOrigin
		want["Access-Control-Expose-Headers"] = "Retry-After"
	}
	for name, value := range want {
		if got := w.Header().Get(name); got != value {
			t.Errorf("%s: got %q, want %q", name, got, value)
		}
	}
	if !withCORS {
		for _, name := range []string{"Access-Control-Allow-Origin", "Access-Control-Expose-Headers", "Access-Control-Allow-Methods"} {
			if got := w.Header().Get(name); got != "" {
				t.Errorf("%s: got %q, want none", name, got)
			}
		}
	}
}

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

// TestLoneSurrogateClaim: a claimed ID with a lone surrogate equals no UID, as in JavaScript,
// even one holding U+FFFD, which json v2 decodes the surrogate to.
func TestLoneSurrogateClaim(t *testing.T) {
	h, _ := newTestHandler(t, testConfig(), dependencies{})
	uid := "user-\uFFFD"
	uidHMAC := "3iUO+dBbfPM1fBN+C7gQKiW1spIoG7LZlFD1A+scYyw=" // computed with openssl and Node
	bearer := "Bearer " + idToken(t, claimsFor(uid, nil))
	tests := []struct {
		name, body string
		wantCode   int
	}{
		{"lone surrogate", `{"data":{"userExternalId":"user-\ud83d"}}`, 403},
		{"U+FFFD escaped", `{"data":{"userExternalId":"user-\ufffd"}}`, 200},
		{"U+FFFD raw", `{"data":{"userExternalId":"user-\uFFFD"}}`, 200},
		{"REST, lone surrogate", `{"userExternalId":"user-\udfff"}`, 403},
		{"REST, U+FFFD escaped", `{"userExternalId":"user-\ufffd"}`, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := call(h, "POST", tt.body, "Content-Type", "application/json", "Authorization", bearer)
			if tt.wantCode == http.StatusOK {
				p := protocolREST
				if strings.HasPrefix(tt.body, `{"data"`) {
					p = protocolCallable
				}
				checkServed(t, w, p, uid, uidHMAC)
				return
			}
			checkRefused(t, w, tt.wantCode, "PERMISSION_DENIED")
		})
	}
}

// TestHeadersAsNodeReadsThem: repeated Accept headers are one list, joined with ", ", as Node
// joins them for onCall; a compressed body is refused rather than read as JSON.
func TestHeadersAsNodeReadsThem(t *testing.T) {
	h, _ := newTestHandler(t, testConfig(), dependencies{})
	bearer := "Bearer " + idToken(t, claimsFor(testUID, nil))
	tests := []struct {
		name        string
		headers     []string
		wantCode    int
		wantContent string
	}{
		{"one Accept: a stream", []string{"Accept", "text/event-stream"}, 200, "text/event-stream"},
		{"Accept twice: not a stream", []string{"Accept", "text/event-stream", "Accept", "text/event-stream"}, 200, "application/json; charset=utf-8"},
		{"Accept and a proxy's Accept: not a stream", []string{"Accept", "text/event-stream", "Accept", "application/json"}, 200, "application/json; charset=utf-8"},
		{"Content-Encoding gzip", []string{"Content-Encoding", "gzip"}, 400, "application/json; charset=utf-8"},
		{"Content-Encoding identity", []string{"Content-Encoding", "identity"}, 200, "application/json; charset=utf-8"},
		{"a second Content-Type is not read", []string{"Content-Type", "text/plain"}, 200, "application/json; charset=utf-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := call(h, "POST", `{"data":null}`, append([]string{"Content-Type", "application/json", "Authorization", bearer}, tt.headers...)...)
			if got := w.Header().Get("Content-Type"); got != tt.wantContent {
				t.Errorf("Content-Type: got %q, want %q", got, tt.wantContent)
			}
			switch {
			case tt.wantCode != http.StatusOK:
				checkRefused(t, w, tt.wantCode, "INVALID_ARGUMENT")
			case tt.wantContent == "text/event-stream":
				want := `data: {"result":{"hmac":"` + testUIDHMAC + `","userExternalId":"` + testUID + `"}}` + "\n\n"
				if w.Code != http.StatusOK || w.Body.String() != want {
					t.Errorf("got %d %q, want 200 %q", w.Code, w.Body.String(), want)
				}
			default:
				checkServed(t, w, protocolCallable, testUID, testUIDHMAC)
			}
		})
	}
}

// checkHMAC asserts a 200 answer in the protocol p for uid.
func checkHMAC(t *testing.T, a answer, p protocol, uid, wantHMAC string) {
	t.Helper()
	got := hmacResult{a.HMAC, a.UserExternalID}
	if p == protocolCallable {
		if a.Result == nil {
			t.Fatalf("callable answer without result: %+v", a)
		}
		got = hmacResult{a.Result.HMAC, a.Result.UserExternalID}
	} else if a.Result != nil {
		t.Fatalf("REST answer with result: %+v", a)
	}
	if want := (hmacResult{wantHMAC, uid}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// checkServed asserts a 200 answer in the protocol p carrying uid's HMAC, wantHMAC.
func checkServed(t *testing.T, w *httptest.ResponseRecorder, p protocol, uid, wantHMAC string) {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("status: got %d, want 200 (%.200s)", w.Code, w.Body.String())
	}
	checkHMAC(t, decode(t, w), p, uid, wantHMAC)
}

// checkRefused asserts a refusal: the HTTP status, the error shape with the canonical status
// (decode allows only one of error, hmac and result, so no HMAC field), and no HMAC of testUID
// anywhere in the body.
func checkRefused(t *testing.T, w *httptest.ResponseRecorder, code int, status string) answer {
	t.Helper()
	if w.Code != code {
		t.Fatalf("status: got %d, want %d (%.200s)", w.Code, code, w.Body.String())
	}
	a := decode(t, w)
	if a.Error == nil || a.Error.Status != status {
		t.Fatalf("got %.200s, want error status %s", w.Body.String(), status)
	}
	if strings.Contains(w.Body.String(), testUIDHMAC) {
		t.Errorf("refusal %s holds an HMAC", w.Body.String())
	}
	return a
}

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

// TestHMACVectors checks hmacKey.sign and the whole handler against values computed independently:
// printf %s "$UID" | openssl dgst -sha256 -hmac "$SECRET" -binary | base64, and Node's
// crypto.createHmac('sha256', secret).update(uid).digest('base64'), which agreed.
func TestHMACVectors(t *testing.T) {
	h, _ := newTestHandler(t, testConfig(), dependencies{})
	tests := []struct {
		name, uid, want string
	}{
		{"Firebase UID from Proficient's docs", testUID, testUIDHMAC},
		{"one character", "a", "uFWRhfpBt2VsMhcXPgZZDYFqkP3cTp3YxJI6/PfxmUE="},
		{"UTF-8 custom UID", "ユーザー🔑-ñ", "cczUn6h7Oni5LISJADkG1kjkLXrQgQooESI5Q804MHA="},
		{"128-byte UID", strings.Repeat("u", 128), "3jdpUPdbFAuYzcu2sDzBiXzmfmuJZEQ3DkugItAuYmg="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := newHMACKey([]byte(testSecret)).sign(tt.uid); got != tt.want {
				t.Errorf("sign: got %q, want %q", got, tt.want)
			}
			w := call(h, "POST", `{"data":null}`, "Content-Type", "application/json",
				"Authorization", "Bearer "+idToken(t, claimsFor(tt.uid, nil)))
			if w.Code != http.StatusOK {
				t.Fatalf("status: got %d, want 200 (%s)", w.Code, w.Body.String())
			}
			checkHMAC(t, decode(t, w), protocolCallable, tt.uid, tt.want)
		})
	}
}

func TestLogLevelSilencesRequests(t *testing.T) {
	cfg := testConfig()
	cfg.logLevel = slog.LevelError
	h, logs := newTestHandler(t, cfg, dependencies{})
	call(h, "POST", "", "Authorization", "Bearer "+idToken(t, claimsFor(testUID, nil)))
	call(h, "POST", "")
	if got := logs.String(); got != "" {
		t.Errorf("LOG_LEVEL=error logged %q for a 200 and a 401, want nothing", got)
	}
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestChunkedBodyIsBounded: a body of unknown length (chunked, no Content-Length) is read only up
// to the limit: over it, 413 with little more than 64 KiB read, not the whole body; at the limit,
// judged as JSON.
func TestChunkedBodyIsBounded(t *testing.T) {
	h, _ := newTestHandler(t, testConfig(), dependencies{})
	bearer := "Bearer " + idToken(t, claimsFor(testUID, nil))
	tests := []struct {
		name     string
		size     int
		wantCode int
	}{
		{"1 MiB", 1 << 20, http.StatusRequestEntityTooLarge},
		{"one byte over 64 KiB", maxBody + 1, http.StatusRequestEntityTooLarge},
		{"exactly 64 KiB", maxBody, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := &countingReader{r: strings.NewReader(`{"x":"` + strings.Repeat("y", tt.size-8) + `"}`)}
			r := httptest.NewRequest("POST", "/api/proficient-hmac", body)
			r.ContentLength, r.TransferEncoding = -1, []string{"chunked"}
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Authorization", bearer)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if tt.wantCode == http.StatusOK {
				checkServed(t, w, protocolREST, testUID, testUIDHMAC)
			} else {
				checkRefused(t, w, tt.wantCode, "INVALID_ARGUMENT")
			}
			if body.n > 70<<10 {
				t.Errorf("read %d bytes of a %d-byte body: want at most 70 KiB", body.n, tt.size)
			}
		})
	}
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
