package proficienthmac

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proficient-hmac/proficient-hmac/internal/standin"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
)

const testVersion = "projects/" + testProject + "/secrets/proficient-hmac/versions/latest"

// secretManager sets what the stand-in's Secret Manager (gRPC over TLS on loopback) answers,
// and returns the options that point the real secretmanager client at it.
func secretManager(t *testing.T, value string, fail codes.Code) []option.ClientOption {
	resetGoogle(t)
	setSecret(value, fail)
	return []option.ClientOption{
		option.WithEndpoint(google.GRPCAddr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(credentials.NewClientTLSFromCert(google.CAPool, "secretmanager.googleapis.com"))),
	}
}

func setSecret(value string, fail codes.Code) {
	google.Set(func(g *standin.Google) { g.Secret, g.SecretFail = value, fail })
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// withClock gives the handler's secret cache, and its file if it reads one, a clock the test
// moves, starting now.
func withClock(h *handler) *fakeClock {
	clock := &fakeClock{now: time.Now()}
	h.secret.now = clock.Now
	if f, ok := h.secret.source.(*fileSecret); ok {
		f.mu.Lock()
		f.now = clock.Now
		f.mu.Unlock()
	}
	return clock
}

func secretManagerConfig() config {
	cfg := testConfig()
	cfg.secret = secretConfig{backend: &secretInSecretManager, location: testVersion, refresh: 5 * time.Minute}
	return cfg
}

// hmacFor asks the handler for testUID's HMAC; "" when it did not answer 200, which must then be
// an error without one.
func hmacFor(t *testing.T, h *handler) (string, int) {
	t.Helper()
	w := call(h, "POST", "", "Authorization", "Bearer "+idToken(t, claimsFor(testUID, nil)))
	if w.Code != http.StatusOK {
		if a := decode(t, w); a.Error == nil {
			t.Errorf("%d %s: want an error, and no HMAC", w.Code, w.Body.String())
		}
		return "", w.Code
	}
	return decode(t, w).HMAC, w.Code
}

// refreshNow moves the clock past the next due time, lets one request start the background
// refresh and waits for that refresh to end.
func refreshNow(t *testing.T, h *handler, clock *fakeClock, by time.Duration) {
	t.Helper()
	clock.advance(by)
	hmacFor(t, h)
	waitForRead(h)
}

// waitForRead waits for the secret read under way, if any, to end.
func waitForRead(h *handler) {
	if done := h.secret.reading.Load(); done != nil {
		<-*done
	}
}

func TestSecretManager(t *testing.T) {
	v1, v2 := "hsec_version_one", "hsec_version_two"
	sm := secretManager(t, v1+"\n", codes.OK) // as `echo … | gcloud secrets create --data-file=-` stores it
	h, logs := newTestHandler(t, secretManagerConfig(), dependencies{secretOptions: sm})
	clock := withClock(h)

	// First read, at start, trimmed.
	if got, _ := hmacFor(t, h); got != newHMACKey([]byte(v1)).sign(testUID) {
		t.Fatalf("first read: got %q, want the HMAC under version one", got)
	}
	// Not due yet: no read.
	readsAfterStart := google.SecretReads()
	clock.advance(4 * time.Minute)
	hmacFor(t, h)
	waitForRead(h)
	if got := google.SecretReads(); got != readsAfterStart {
		t.Errorf("reads before the refresh is due: got %d, want %d", got, readsAfterStart)
	}

	// A refresh picks up a new version; requests meanwhile keep the cached value.
	setSecret(v2, codes.OK)
	refreshNow(t, h, clock, 2*time.Minute)
	if got, _ := hmacFor(t, h); got != newHMACKey([]byte(v2)).sign(testUID) {
		t.Errorf("after refresh: got %q, want the HMAC under version two", got)
	}

	// A failed refresh keeps the last good value and logs a WARNING.
	setSecret(v1, codes.Internal)
	refreshNow(t, h, clock, 6*time.Minute)
	if got, code := hmacFor(t, h); got != newHMACKey([]byte(v2)).sign(testUID) {
		t.Errorf("after a failed refresh: got %q (%d), want the HMAC under version two", got, code)
	}
	if !strings.Contains(logs.String(), `"severity":"WARNING","message":"secret refresh failed`) {
		t.Errorf("log %q: want a WARNING for the failed refresh", logs.String())
	}

	// A refreshed value that is not an hsec_ key is refused the same way.
	setSecret("not-a-key", codes.OK)
	refreshNow(t, h, clock, 6*time.Minute)
	if got, _ := hmacFor(t, h); got != newHMACKey([]byte(v2)).sign(testUID) {
		t.Errorf("after a bad value: got %q, want the HMAC under version two", got)
	}
	if strings.Contains(logs.String(), "not-a-key") || strings.Contains(logs.String(), v2) {
		t.Error("log contains a secret value")
	}
}

// TestSecretManagerDownAtStart: a passing failure at start is not a configuration error. The
// function starts, answers 503 with Retry-After until the secret can be read, then serves.
func TestSecretManagerDownAtStart(t *testing.T) {
	sm := secretManager(t, testSecret, codes.Internal)
	h, logs := newTestHandler(t, secretManagerConfig(), dependencies{secretOptions: sm})
	clock := withClock(h)

	w := call(h, "POST", "", "Authorization", "Bearer "+idToken(t, claimsFor(testUID, nil)))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("with no secret yet: got %d, Retry-After %q; want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	if a := decode(t, w); a.Error.Status != "UNAVAILABLE" {
		t.Errorf("status: got %q, want UNAVAILABLE", a.Error.Status)
	}
	waitForRead(h)

	// Retries are spaced: a request before the retry delay starts no read.
	reads := google.SecretReads()
	hmacFor(t, h)
	waitForRead(h)
	if got := google.SecretReads(); got != reads {
		t.Errorf("reads within the retry delay: got %d, want %d", got, reads)
	}

	// Due again and still failing: an ERROR, and still 503.
	refreshNow(t, h, clock, 6*time.Second)
	if _, code := hmacFor(t, h); code != http.StatusServiceUnavailable {
		t.Errorf("still down: got %d, want 503", code)
	}
	if !strings.Contains(logs.String(), `"severity":"ERROR","message":"secret unavailable`) {
		t.Errorf("log %q: want an ERROR for a failed read with no secret", logs.String())
	}

	setSecret(testSecret, codes.OK)
	refreshNow(t, h, clock, 6*time.Second)
	if got, code := hmacFor(t, h); got != testUIDHMAC {
		t.Errorf("after recovery: got %q (%d), want %q", got, code, testUIDHMAC)
	}
	for _, want := range []string{`"severity":"WARNING","message":"secret not read at start`, `"severity":"ERROR","message":"request"`, `"reason":"secret_unavailable"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log %q: want %s", logs.String(), want)
		}
	}
}

func TestSecretManagerCRCMismatchIsRefused(t *testing.T) {
	sm := secretManager(t, testSecret, codes.OK)
	google.Set(func(g *standin.Google) { g.BadCRC = true })
	h, _ := newTestHandler(t, secretManagerConfig(), dependencies{secretOptions: sm})
	if _, code := hmacFor(t, h); code != http.StatusServiceUnavailable {
		t.Errorf("status with a corrupt payload: got %d, want 503", code)
	}
}

// TestSecretManagerConfigurationErrors: failures that retrying cannot mend stop the start.
func TestSecretManagerConfigurationErrors(t *testing.T) {
	tests := []struct {
		name    string
		version string
		value   string
		fail    codes.Code
	}{
		{"permission denied", testVersion, testSecret, codes.PermissionDenied},
		{"not found", "projects/" + testProject + "/secrets/missing/versions/latest", testSecret, codes.OK},
		{"version disabled", testVersion, testSecret, codes.FailedPrecondition},
		{"value without hsec_", testVersion, "sk_live_123", codes.OK},
		{"empty value", testVersion, "  \n", codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sm := secretManager(t, tt.value, tt.fail)
			cfg := secretManagerConfig()
			cfg.secret.location = tt.version
			_, err := newHandler(context.Background(), cfg, dependencies{logs: &lockedBuffer{}, secretOptions: sm})
			var ce *configError
			if !errors.As(err, &ce) || ce.variable != envSecretVersion {
				t.Fatalf("got %v, want a configuration error naming %s", err, envSecretVersion)
			}
			if strings.Contains(err.Error(), "sk_live_123") {
				t.Errorf("error %q contains the value", err)
			}
		})
	}
}

func TestSecretFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hmac-secret")
	writeSecretFile(t, path, "  "+testSecret+"\r\n")
	cfg := testConfig()
	cfg.secret = fileConfig(path)
	h, _ := newTestHandler(t, cfg, dependencies{})
	clock := withClock(h)

	// Written before the start, it is taken at once, trimmed.
	if got, _ := hmacFor(t, h); got != testUIDHMAC {
		t.Fatalf("trimmed value: got %q, want %q", got, testUIDHMAC)
	}

	// Rotation replaces the file, as a secret volume mount does; the new content is taken once
	// it has stood unchanged for settleTime.
	rotated := "hsec_rotated_value"
	rotateSecretFile(t, path, rotated+"\n")
	for _, after := range []time.Duration{time.Second, settleTime - 2*time.Second} {
		refreshNow(t, h, clock, after)
		if got, _ := hmacFor(t, h); got != testUIDHMAC {
			t.Errorf("%s into the rotation: got %q, want the settled HMAC %q", after, got, testUIDHMAC)
		}
	}
	refreshNow(t, h, clock, 2*time.Second)
	if got, _ := hmacFor(t, h); got != newHMACKey([]byte(rotated)).sign(testUID) {
		t.Errorf("after rotation: got %q, want the HMAC under the rotated value", got)
	}

	// A file that goes missing or bad keeps the last good value.
	os.Remove(path)
	refreshNow(t, h, clock, 2*time.Second)
	if got, _ := hmacFor(t, h); got != newHMACKey([]byte(rotated)).sign(testUID) {
		t.Errorf("after removal: got %q, want the last good HMAC", got)
	}
}

// TestSecretFileTornWrite: a writer rewrites the file in place (truncates it, writes part, pauses
// 3 s, writes the rest), and every read of the pause finds the half-written value, which starts
// with hsec_; it is never used, and the whole value is taken once it has stood for settleTime.
func TestSecretFileTornWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hmac-secret")
	writeSecretFile(t, path, testSecret)
	cfg := testConfig()
	cfg.secret = fileConfig(path)
	h, _ := newTestHandler(t, cfg, dependencies{})
	clock := withClock(h)

	full := "hsec_rotated_in_place_0123456789"
	torn := full[:len("hsec_rot")]
	writeInPlace(t, path, torn, clock.Now())
	for range 3 { // the writer's pause, a read a second
		refreshNow(t, h, clock, time.Second)
		if got, _ := hmacFor(t, h); got != testUIDHMAC {
			t.Fatalf("while the file is half-written: got %q, want the settled HMAC %q", got, testUIDHMAC)
		}
	}
	appendInPlace(t, path, full[len(torn):], clock.Now()) // the writer finishes
	checkSettles(t, h, clock, testUIDHMAC, newHMACKey([]byte(full)).sign(testUID), newHMACKey([]byte(torn)).sign(testUID))
}

// TestSecretFileTornAtStart: the instance starts while a writer that rewrites the file in place
// pauses half-way for 2 s. Nothing is served under the half-written value: 503 until the whole
// value has stood for settleTime, then its HMAC.
func TestSecretFileTornAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hmac-secret")
	full := "hsec_rotated_in_place_0123456789"
	torn := full[:len("hsec_r")]
	writeInPlace(t, path, torn, time.Now())
	cfg := testConfig()
	cfg.secret = fileConfig(path)
	h, logs := newTestHandler(t, cfg, dependencies{})
	clock := withClock(h)
	if got, code := hmacFor(t, h); code != http.StatusServiceUnavailable {
		t.Fatalf("at start: got %d %q, want 503", code, got)
	}
	if !strings.Contains(logs.String(), "it is taken once it has stood unchanged for 5s") {
		t.Errorf("log %q: want a WARNING saying the file is taken once it has stood unchanged", logs.String())
	}
	for range 2 { // the writer's pause
		refreshNow(t, h, clock, time.Second)
		if got, code := hmacFor(t, h); code != http.StatusServiceUnavailable {
			t.Fatalf("while the file is half-written: got %d %q, want 503", code, got)
		}
	}
	appendInPlace(t, path, full[len(torn):], clock.Now())
	checkSettles(t, h, clock, "", newHMACKey([]byte(full)).sign(testUID), newHMACKey([]byte(torn)).sign(testUID))
}

// checkSettles reads the file each second for settleTime: the HMAC is before ("" for none)
// until the last read, then after, and never torn.
func checkSettles(t *testing.T, h *handler, clock *fakeClock, before, after, torn string) {
	t.Helper()
	seconds := int(settleTime / time.Second)
	for i := range seconds {
		refreshNow(t, h, clock, time.Second)
		got, _ := hmacFor(t, h)
		want := before
		if i == seconds-1 {
			want = after
		}
		if got == torn || got != want {
			t.Fatalf("%d s after the write ended: got %q, want %q (the half-written value's is %q)", i+1, got, want, torn)
		}
	}
}

// fileConfig is PROFICIENT_HMAC_SECRET_FILE=path, as loadConfig reads it.
func fileConfig(path string) secretConfig {
	return secretConfig{backend: &secretInFile, location: path, refresh: time.Second}
}

// writeSecretFile writes path as it stands when an instance starts: replaced atomically, last
// modified an hour before.
func writeSecretFile(t *testing.T, path, content string) {
	t.Helper()
	rotateSecretFile(t, path, content)
	hourAgo := time.Now().Add(-time.Hour)
	if err := os.Chtimes(path, hourAgo, hourAgo); err != nil {
		t.Fatal(err)
	}
}

// rotateSecretFile replaces path atomically now, as a rotation does.
func rotateSecretFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// writeInPlace truncates path and writes part of a value, as an in-place writer does before a
// pause; its modification time is set to at (the test's clock).
func writeInPlace(t *testing.T, path, part string, at time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(part), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
}

// appendInPlace writes the rest, as that writer does after its pause.
func appendInPlace(t *testing.T, path, rest string, at time.Time) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(rest); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
}

func TestSecretFileConfigurationErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	writeSecretFile(t, bad, "sk_not_proficient\n")
	for name, path := range map[string]string{"missing file": filepath.Join(dir, "missing"), "not hsec_": bad, "a directory": dir} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig()
			cfg.secret = fileConfig(path)
			_, err := newHandler(context.Background(), cfg, dependencies{logs: &lockedBuffer{}})
			var ce *configError
			if !errors.As(err, &ce) || ce.variable != envSecretFile {
				t.Fatalf("got %v, want a configuration error naming %s", err, envSecretFile)
			}
		})
	}
}

// TestQuotedSecret: a secret pasted with its quotes (a .env file, a shell that kept them) is a
// configuration error that says so, from any source, without printing the value.
func TestQuotedSecret(t *testing.T) {
	file := filepath.Join(t.TempDir(), "hmac-secret")
	writeSecretFile(t, file, `"hsec_sk_live_leak"`+"\n")
	tests := []struct {
		name     string
		secret   secretConfig
		variable string
	}{
		{"double quotes", secretConfig{backend: &secretByValue, location: `"hsec_sk_live_leak"`}, envSecret},
		{"single quotes", secretConfig{backend: &secretByValue, location: `'hsec_sk_live_leak'`}, envSecret},
		{"double quotes and a newline", secretConfig{backend: &secretByValue, location: "\"hsec_sk_live_leak\"\n"}, envSecret},
		{"in a file", fileConfig(file), envSecretFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.secret = tt.secret
			_, err := newHandler(context.Background(), cfg, dependencies{logs: &lockedBuffer{}})
			var ce *configError
			if !errors.As(err, &ce) || ce.variable != tt.variable || !strings.Contains(err.Error(), "quoted") || !strings.Contains(ce.fix, "remove the quotes") {
				t.Fatalf("got %v, want a configuration error naming %s that says the value is quoted", err, tt.variable)
			}
			if strings.Contains(err.Error(), "sk_live") {
				t.Errorf("error %q contains the value", err)
			}
		})
	}
}

func TestSecretValueConfigurationErrors(t *testing.T) {
	for _, value := range []string{"sk_live_abc", "hsec_", " hsec_ ", "HSEC_abc"} {
		cfg := testConfig()
		cfg.secret = secretConfig{backend: &secretByValue, location: value}
		_, err := newHandler(context.Background(), cfg, dependencies{logs: &lockedBuffer{}})
		var ce *configError
		if !errors.As(err, &ce) || ce.variable != envSecret {
			t.Errorf("value %q: got %v, want a configuration error naming %s", value, err, envSecret)
		}
		if err != nil && strings.Contains(err.Error(), "sk_live") {
			t.Errorf("error %q contains the value", err)
		}
	}
}

// TestSlowSecretManagerAtStart: the start waits for the first read only so long; a request that
// comes while it is still under way waits for it rather than failing.
func TestSlowSecretManagerAtStart(t *testing.T) {
	sm := secretManager(t, testSecret, codes.OK)
	google.Set(func(g *standin.Google) { g.SecretDelay = 500 * time.Millisecond })
	h, logs := newTestHandler(t, secretManagerConfig(), dependencies{secretOptions: sm, startWait: 10 * time.Millisecond})
	if !strings.Contains(logs.String(), "secret still being read") {
		t.Fatalf("log %q: want the start to go on without the secret", logs.String())
	}
	if got, code := hmacFor(t, h); got != testUIDHMAC {
		t.Errorf("first request: got %q (%d), want %q", got, code, testUIDHMAC)
	}
}

// TestSecretManagerSlowAtRefresh: a refresh stuck on a slow Secret Manager is one read, bounded
// by its timeout; meanwhile every request is served from the cached value.
func TestSecretManagerSlowAtRefresh(t *testing.T) {
	sm := secretManager(t, testSecret, codes.OK)
	h, logs := newTestHandler(t, secretManagerConfig(), dependencies{secretOptions: sm})
	clock := withClock(h)
	h.secret.timeout = 200 * time.Millisecond
	google.Set(func(g *standin.Google) { g.SecretDelay = 5 * time.Second })
	reads := google.SecretReads()
	clock.advance(6 * time.Minute)

	var wg sync.WaitGroup
	codes := make(chan string, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, _ := hmacFor(t, h)
			codes <- got
		}()
	}
	wg.Wait()
	close(codes)
	for got := range codes {
		if got != testUIDHMAC {
			t.Fatalf("during a slow refresh: got %q, want the cached HMAC", got)
		}
	}
	waitForRead(h)
	if got := google.SecretReads() - reads; got != 1 {
		t.Errorf("reads for 50 requests during one due refresh: got %d, want 1", got)
	}
	if !strings.Contains(logs.String(), "secret refresh failed") {
		t.Errorf("log %q: want a WARNING for the refresh that timed out", logs.String())
	}
}

// TestDrainWaitsForRequestsUnderWay: at SIGTERM the requests being served finish first. One
// waits on a slow first read of the secret; drain returns only once it has been answered.
func TestDrainWaitsForRequestsUnderWay(t *testing.T) {
	sm := secretManager(t, testSecret, codes.OK)
	google.Set(func(g *standin.Google) { g.SecretDelay = 300 * time.Millisecond })
	h, _ := newTestHandler(t, secretManagerConfig(), dependencies{secretOptions: sm, startWait: time.Millisecond})
	w, r := httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil)
	r.Header.Set("Authorization", "Bearer "+idToken(t, claimsFor(testUID, nil)))
	go h.ServeHTTP(w, r)
	for h.inFlight.Load() == 0 { // until the request is under way (the read takes 300 ms)
		runtime.Gosched()
	}
	if !h.drain(10 * time.Second) {
		t.Fatal("drain gave up with a request under way")
	}
	// ServeHTTP answered before its count went down, and drain saw that: the answer is complete.
	if w.Code != http.StatusOK || decode(t, w).HMAC != testUIDHMAC {
		t.Fatalf("the request under way: got %d %q, want its HMAC", w.Code, w.Body.String())
	}
}
