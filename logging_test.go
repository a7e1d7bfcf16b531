package proficienthmac

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

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

func TestRequestLog(t *testing.T) {
	h, logs := newTestHandler(t, testConfig(), dependencies{})
	token := idToken(t, claimsFor(testUID, nil))

	ok := httptest.NewRequest("POST", "/api/proficient-hmac?token=query-secret&x=1", strings.NewReader(`{"data":null}`))
	ok.Header.Set("Content-Type", "application/json")
	ok.Header.Set("Authorization", "Bearer "+token)
	ok.Header.Set("X-Cloud-Trace-Context", "105445aa7843bc8bf206b12000100000/10;o=1")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, ok)
	hmacValue := decode(t, w).Result.HMAC

	call(h, "POST", `{"userExternalId":"someone-else"}`, "Content-Type", "application/json", "Authorization", "Bearer "+token)

	out := logs.String()
	for _, secret := range []string{token, testSecret, hmacValue, "query-secret"} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains %q", secret)
		}
	}
	lines := logLines(t, out)
	if len(lines) != 2 {
		t.Fatalf("got %d log lines, want one per request:\n%s", len(lines), out)
	}
	success, refusal := lines[0], lines[1]
	want := map[string]any{
		"severity":                             "INFO",
		"message":                              "request",
		"reason":                               "ok",
		"uid":                                  testUID,
		"form":                                 "callable",
		"logging.googleapis.com/trace":         "projects/" + testProject + "/traces/105445aa7843bc8bf206b12000100000",
		"logging.googleapis.com/spanId":        "000000000000000a",
		"logging.googleapis.com/trace_sampled": true,
	}
	for k, v := range want {
		if success[k] != v {
			t.Errorf("success %s: got %v, want %v", k, success[k], v)
		}
	}
	httpRequest, _ := success["httpRequest"].(map[string]any)
	if httpRequest["requestUrl"] != "/api/proficient-hmac" || httpRequest["status"] != float64(200) || httpRequest["requestMethod"] != "POST" {
		t.Errorf("httpRequest: got %v, want POST /api/proficient-hmac 200 without the query", httpRequest)
	}
	// On Cloud Run the connection comes from Google's front end, so RemoteAddr is not the
	// client's; the platform's own request log, joined by the trace, has the real one.
	if ip, logged := httpRequest["remoteIp"]; logged {
		t.Errorf("httpRequest.remoteIp: got %v, want none", ip)
	}
	if _, named := success["source"]; named {
		t.Errorf("source: got %v, want none", success["source"])
	}
	if latency, _ := httpRequest["latency"].(string); !strings.HasSuffix(latency, "s") {
		t.Errorf("latency: got %q, want seconds like 0.000123s", latency)
	}
	if refusal["severity"] != "WARNING" || refusal["reason"] != "external_id_mismatch" || refusal["uid"] != testUID {
		t.Errorf("refusal: got %v, want WARNING external_id_mismatch with the uid", refusal)
	}
}

func TestAppendTrace(t *testing.T) {
	trace := "projects/p/traces/"
	tests := []struct {
		name, header, value string
		want                map[string]any
	}{
		{"cloud trace, sampled", "X-Cloud-Trace-Context", "0123456789abcdef0123456789abcdef/123;o=1", map[string]any{
			"logging.googleapis.com/trace": trace + "0123456789abcdef0123456789abcdef", "logging.googleapis.com/spanId": "000000000000007b",
			"logging.googleapis.com/trace_sampled": true}},
		{"cloud trace, no span", "X-Cloud-Trace-Context", "0123456789abcdef0123456789abcdef", map[string]any{
			"logging.googleapis.com/trace": trace + "0123456789abcdef0123456789abcdef", "logging.googleapis.com/trace_sampled": false}},
		{"cloud trace, max span", "X-Cloud-Trace-Context", "abc/18446744073709551615;o=0", map[string]any{
			"logging.googleapis.com/trace": trace + "abc", "logging.googleapis.com/spanId": "ffffffffffffffff",
			"logging.googleapis.com/trace_sampled": false}},
		{"traceparent", "traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", map[string]any{
			"logging.googleapis.com/trace": trace + "0af7651916cd43dd8448eb211c80319c", "logging.googleapis.com/spanId": "b7ad6b7169203331",
			"logging.googleapis.com/trace_sampled": true}},
		{"not hex", "X-Cloud-Trace-Context", "../../etc/1;o=1", map[string]any{}},
		{"empty", "X-Cloud-Trace-Context", "", map[string]any{}},
		{"bad traceparent", "traceparent", "00-xyz", map[string]any{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := http.Header{}
			header.Set(tt.header, tt.value)
			got := map[string]any{}
			for _, a := range appendTrace(nil, "p", header) {
				got[a.Key] = a.Value.Any()
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestLogLevels: each LOG_LEVEL value, read from the environment as at start, lets through its
// severity and those above it: debug everything; info (the default) also each success's audit
// line; warning, in any case, only refusals and errors; error only errors.
func TestLogLevels(t *testing.T) {
	all := []string{"DEBUG", "INFO", "WARNING", "ERROR"}
	tests := []struct {
		value string
		want  []string
	}{
		{"", all[1:]},
		{"debug", all},
		{"DEBUG", all},
		{"info", all[1:]},
		{"INFO", all[1:]},
		{"warning", all[2:]},
		{"WARNING", all[2:]},
		{"warn", all[2:]},
		{"error", all[3:]},
		{"ERROR", all[3:]},
	}
	bearer := "Bearer " + idToken(t, claimsFor(testUID, nil))
	for _, tt := range tests {
		t.Run("LOG_LEVEL="+tt.value, func(t *testing.T) {
			env := map[string]string{"GOOGLE_CLOUD_PROJECT": testProject, envSecret: testSecret, "LOG_LEVEL": tt.value}
			cfg, err := loadConfig(func(name string) string { return env[name] })
			if err != nil {
				t.Fatal(err)
			}
			h, logs := newTestHandler(t, cfg, dependencies{})
			h.log.log.Debug("debug")
			call(h, "POST", "", "Authorization", bearer) // a success: INFO
			call(h, "POST", "")                          // a refusal: WARNING
			h.log.log.Error("error")
			var got []string
			for _, line := range logLines(t, logs.String()) {
				got = append(got, line["severity"].(string))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("severities logged: got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSeverities(t *testing.T) {
	var out bytes.Buffer
	logger := newLogger(&out, slog.LevelDebug)
	for _, level := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError, levelCritical} {
		logger.Log(t.Context(), level, "m")
	}
	var got []string
	for _, line := range logLines(t, out.String()) {
		got = append(got, line["severity"].(string))
		if line["message"] != "m" || line["level"] != nil || line["msg"] != nil {
			t.Errorf("line %v: want message, not msg or level", line)
		}
	}
	if want := []string{"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// chanWriter passes each write on to a channel.
type chanWriter chan string

func (c chanWriter) Write(p []byte) (int, error) {
	c <- string(p)
	return len(p), nil
}

func TestLogWriterBatchesLines(t *testing.T) {
	out := make(chanWriter, 10)
	w := newLogWriter(out)
	w.Write([]byte("one\n"))
	w.Write([]byte("two\n"))
	// Both lines arrive in one write, from the flush timer.
	select {
	case got := <-out:
		if got != "one\ntwo\n" {
			t.Errorf("got %q, want both lines in one write", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("buffered lines were never written")
	}

	// A full buffer is written at once, and Flush writes the rest.
	w.Write(bytes.Repeat([]byte("x"), flushAtBytes))
	if got := <-out; len(got) != flushAtBytes {
		t.Errorf("got %d bytes, want %d", len(got), flushAtBytes)
	}
	w.Write([]byte("last\n"))
	w.Flush()
	if got := <-out; got != "last\n" {
		t.Errorf("after Flush: got %q, want %q", got, "last\n")
	}
}

// TestClientSizedFieldsAreBounded: what a client controls is cut, so no request makes a log
// line over 16 KiB (SPEC: Logs).
func TestClientSizedFieldsAreBounded(t *testing.T) {
	h, logs := newTestHandler(t, testConfig(), dependencies{})
	hugeAud := idToken(t, claimsFor(testUID, map[string]any{"aud": strings.Repeat("a", 8<<10)})) // under maxIDToken
	call(h, "POST", "", "User-Agent", strings.Repeat("u", 500<<10), "Authorization", "Bearer "+idToken(t, claimsFor(testUID, nil)))
	call(h, "POST", "", "Authorization", "Bearer "+hugeAud)
	call(h, "GET", "", "User-Agent", strings.Repeat("é", 100<<10)) // cut on a rune boundary
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3", len(lines))
	}
	for i, line := range lines {
		if len(line) > 16<<10 {
			t.Errorf("line %d: %d bytes, want at most 16 KiB", i+1, len(line))
		}
		if !json.Valid([]byte(line)) || strings.Contains(line, `\ufffd`) {
			t.Errorf("line %d is not valid JSON cut on a rune boundary: %.200s", i+1, line)
		}
		if !strings.Contains(line, "bytes)") {
			t.Errorf("line %d: %.300s; want the cut marked with the field's size", i+1, line)
		}
	}
}

// TestRefusedOriginIsLogged: the browser hides a CORS refusal from the page, so the log line
// names the refused origin (bounded) and the variable to set; a refused preflight is a WARNING
// origin_refused, not an ordinary preflight, and an allowed one stays INFO.
func TestRefusedOriginIsLogged(t *testing.T) {
	cfg := testConfig()
	cfg.cors.origins = map[string]bool{testOrigin: true}
	h, logs := newTestHandler(t, cfg, dependencies{})
	bearer := "Bearer " + idToken(t, claimsFor(testUID, nil))
	refused := "https://other.example.com"
	long := "https://" + strings.Repeat("a", 3*maxField) + ".example"

	call(h, "OPTIONS", "", "Origin", refused, "Access-Control-Request-Method", "POST")
	call(h, "POST", `{"data":null}`, "Origin", refused, "Content-Type", "application/json", "Authorization", bearer)
	call(h, "OPTIONS", "", "Origin", testOrigin, "Access-Control-Request-Method", "POST")
	call(h, "OPTIONS", "", "Origin", long, "Access-Control-Request-Method", "POST")

	lines := logLines(t, logs.String())
	if len(lines) != 4 {
		t.Fatalf("got %d log lines, want 4:\n%s", len(lines), logs.String())
	}
	tests := []struct {
		name                   string
		line                   map[string]any
		severity, reason, from string
	}{
		{"refused preflight", lines[0], "WARNING", "origin_refused", refused},
		{"request from a refused origin", lines[1], "WARNING", "ok", refused},
		{"allowed preflight", lines[2], "INFO", "preflight", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.line["severity"] != tt.severity || tt.line["reason"] != tt.reason {
				t.Errorf("got %v %v, want %s %s", tt.line["severity"], tt.line["reason"], tt.severity, tt.reason)
			}
			got, _ := tt.line["refusedOrigin"].(string)
			if got != tt.from {
				t.Errorf("refusedOrigin: got %q, want %q", got, tt.from)
			}
			fix, _ := tt.line["fix"].(string)
			if named := strings.Contains(fix, "CORS_ALLOWED_ORIGINS"); named != (tt.from != "") {
				t.Errorf("fix: got %q, want it to name CORS_ALLOWED_ORIGINS only for a refused origin", fix)
			}
		})
	}
	if got, _ := lines[3]["refusedOrigin"].(string); len(got) > maxField+32 || !strings.HasPrefix(got, "https://aaa") {
		t.Errorf("a long refused origin: got %d bytes, want it cut to about %d", len(got), maxField)
	}
}
