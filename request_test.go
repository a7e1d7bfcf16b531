package proficienthmac

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

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
