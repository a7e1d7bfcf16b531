package proficienthmac

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

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

// BenchmarkRequestLog is one request's log line, from parallel goroutines, into a pipe that
// another process drains, as stderr is on Cloud Run: once through logWriter's batching and once
// straight to the pipe. cpu-ns/op is this process's CPU, user and system, per line.
func BenchmarkRequestLog(b *testing.B) {
	for _, tt := range []struct {
		name  string
		batch bool
	}{{"batched", true}, {"direct", false}} {
		b.Run(tt.name, func(b *testing.B) {
			r, w, err := os.Pipe()
			if err != nil {
				b.Fatal(err)
			}
			drain := exec.Command("cat")
			drain.Stdin = r
			if err := drain.Start(); err != nil {
				b.Fatal(err)
			}
			r.Close()
			var out io.Writer = w
			var batcher *logWriter
			if tt.batch {
				batcher = newLogWriter(w)
				out = batcher
			}
			l := &requestLog{log: newLogger(out, slog.LevelInfo), projectID: testProject}
			req := httptest.NewRequest("POST", "/api/proficient-hmac", nil)
			req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
			req.Header.Set("X-Cloud-Trace-Context", "105445aa7843bc8bf206b12000100000/10;o=1")
			o := &outcome{code: http.StatusOK, reason: "ok", protocol: "callable", uid: testUID, appCheck: "absent"}
			start := time.Now()
			b.ReportAllocs()
			cpuBefore := processCPU(b)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					l.request(req, start, o)
				}
			})
			if batcher != nil {
				batcher.Flush()
			}
			w.Close()
			if err := drain.Wait(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(processCPU(b)-cpuBefore)/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPU is the CPU time, user and system, the process has used so far.
func processCPU(b *testing.B) time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		b.Fatal(err)
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}
