package proficienthmac

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proficient-hmac/proficient-hmac/internal/standin"
)

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
