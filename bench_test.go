package proficienthmac

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkHandler is one callable request through the whole handler: default configuration,
// logging on, a really signed token, Google's keys cached. The request is built once with
// httptest and its body reset each time, so allocs/op are the handler's own, not httptest's.
func BenchmarkHandler(b *testing.B) {
	h, err := newHandler(b.Context(), testConfig(), dependencies{logs: io.Discard})
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

// BenchmarkVerifyIDToken is the floor: the Admin SDK's verification alone, keys cached.
func BenchmarkVerifyIDToken(b *testing.B) {
	verify, err := newVerifier(b.Context(), testConfig())
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

type resettableBody struct{ bytes.Reader }

func (*resettableBody) Close() error { return nil }

// statusWriter keeps the headers and status of an answer and discards its body.
type statusWriter struct {
	header http.Header
	code   int
}

func (w *statusWriter) Header() http.Header         { return w.header }
func (w *statusWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *statusWriter) WriteHeader(code int)        { w.code = code }
