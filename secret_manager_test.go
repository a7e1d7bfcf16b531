package proficienthmac

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proficient-hmac/proficient-hmac/internal/standin"
	"google.golang.org/grpc/codes"
)

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
