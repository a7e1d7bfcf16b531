package proficienthmac

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proficient-hmac/proficient-hmac/internal/standin"
)

// TestKeysFetchedAtStart: the keys are fetched while the instance starts (their lifetime by the
// function, then the keys by the Admin SDK), so no request waits for them.
func TestKeysFetchedAtStart(t *testing.T) {
	before := google.KeyFetches()
	h, _ := newTestHandler(t, testConfig(), dependencies{})
	if got := google.KeyFetches() - before; got != 2 {
		t.Fatalf("key fetches at start: got %d, want 2", got)
	}
	for range 3 {
		if w := call(h, "POST", "", "Authorization", "Bearer "+idToken(t, claimsFor(testUID, nil))); w.Code != http.StatusOK {
			t.Fatalf("status: got %d, want 200", w.Code)
		}
	}
	if got := google.KeyFetches() - before; got != 2 {
		t.Errorf("key fetches after three requests: got %d, want still 2", got)
	}
}

// TestKeysUnavailableAtStart: with Google's key endpoint failing at start, a good token is an
// outage (503 with Retry-After), not a bad token (401), until a refresh succeeds.
func TestKeysUnavailableAtStart(t *testing.T) {
	google.Set(func(g *standin.Google) { g.KeysStatus = http.StatusServiceUnavailable })
	h, logs := newTestHandler(t, testConfig(), dependencies{})
	if !strings.Contains(logs.String(), `"severity":"WARNING","message":"Google's signing keys not fetched at start`) {
		t.Errorf("log %q: want a WARNING for the failed fetch at start", logs.String())
	}
	token := idToken(t, claimsFor(testUID, nil))
	w := call(h, "POST", `{"data":null}`, "Content-Type", "application/json", "Authorization", "Bearer "+token)
	checkKeysUnavailable(t, w)
	google.Set(func(g *standin.Google) { g.KeysStatus = 0 })
	if _, err := h.auth.keys.refresh(t.Context()); err != nil { // as the background does, within a second
		t.Fatal(err)
	}
	if w := call(h, "POST", "", "Authorization", "Bearer "+token); w.Code != http.StatusOK || decode(t, w).HMAC != testUIDHMAC {
		t.Errorf("after recovery: got %d %s, want 200 and the HMAC", w.Code, w.Body.String())
	}
}

// TestKeysSlow: with Google's key endpoint slower than the bound at start, a request is an outage
// (503) once the bound passes, not a wait for as long as Google takes. The stand-in answers 200
// after its delay, so a 200 here would mean the bound did not hold.
func TestKeysSlow(t *testing.T) {
	google.Set(func(g *standin.Google) { g.KeysDelay = 2 * time.Second })
	h, _ := newTestHandler(t, testConfig(), dependencies{verifyTimeout: 100 * time.Millisecond})
	checkKeysUnavailable(t, call(h, "POST", "", "Authorization", "Bearer "+idToken(t, claimsFor(testUID, nil))))
}

// keyOutages are the ways Google's key endpoint fails.
var keyOutages = []struct {
	name string
	fail func(g *standin.Google)
}{
	{"answering 500", func(g *standin.Google) { g.KeysStatus = http.StatusInternalServerError }},
	{"unreachable", func(g *standin.Google) { g.KeysUnreachable = true }},
	{"hanging", func(g *standin.Google) { g.KeysDelay = time.Hour }},
}

// TestKeysOutageWithinTheirLifetime: the keys are served with a 3 s max-age, so the function
// refreshes them every 1.5 s. From just after a refresh until just before the refreshed keys
// expire, the endpoint fails; every live token still gets its HMAC. (The Admin SDK alone empties
// its cache at expiry: every request failed until the endpoint was back.)
func TestKeysOutageWithinTheirLifetime(t *testing.T) {
	for _, outage := range keyOutages {
		t.Run(outage.name, func(t *testing.T) {
			google.Set(func(g *standin.Google) { g.KeysMaxAge = 3 * time.Second })
			h, _ := newTestHandler(t, testConfig(), dependencies{verifyTimeout: 500 * time.Millisecond})
			atStart := h.auth.keys.current.Load()
			eventually(t, 10*time.Second, func() bool { return h.auth.keys.current.Load() != atStart })
			refreshed := h.auth.keys.current.Load()
			google.Set(outage.fail)
			defer google.Reset()
			token := idToken(t, claimsFor(testUID, nil))
			served := 0
			for time.Now().Before(refreshed.expires.Add(-300 * time.Millisecond)) {
				w := call(h, "POST", "", "Authorization", "Bearer "+token)
				if w.Code != http.StatusOK || decode(t, w).HMAC != testUIDHMAC {
					t.Fatalf("after %d answers, with the keys good until %s: got %d %s", served, refreshed.expires.Format(time.StampMilli), w.Code, w.Body.String())
				}
				served++
			}
			if served == 0 {
				t.Fatal("no request sent (a bad test)")
			}
		})
	}
}

// TestKeysOutageBeyondTheirLifetime: the endpoint fails from the start and the keys (1 s
// max-age) expire. Requests then get 503 with Retry-After at once, none waiting on a fetch, while
// the endpoint sees about one fetch a second, not one a request; once it is back, HMACs again.
func TestKeysOutageBeyondTheirLifetime(t *testing.T) {
	for _, outage := range keyOutages {
		t.Run(outage.name, func(t *testing.T) {
			google.Set(func(g *standin.Google) { g.KeysMaxAge = time.Second })
			h, logs := newTestHandler(t, testConfig(), dependencies{verifyTimeout: 500 * time.Millisecond})
			google.Set(outage.fail)
			token := idToken(t, claimsFor(testUID, nil))
			eventually(t, 10*time.Second, func() bool {
				return call(h, "POST", "", "Authorization", "Bearer "+token).Code == http.StatusServiceUnavailable
			})
			const window, callers = 2 * time.Second, 8
			before, end := google.KeyFetches(), time.Now().Add(window)
			var mu sync.Mutex
			answered, slowest := 0, time.Duration(0)
			var wg sync.WaitGroup
			for range callers {
				wg.Go(func() {
					for time.Now().Before(end) {
						start := time.Now()
						w := call(h, "POST", "", "Authorization", "Bearer "+token)
						took := time.Since(start)
						checkKeysUnavailable(t, w)
						mu.Lock()
						answered, slowest = answered+1, max(slowest, took)
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			fetches := google.KeyFetches() - before
			if answered < 100 || fetches > int(window/time.Second)+2 {
				t.Errorf("%d requests, %d key fetches in %s: want about one fetch a second, not one a request", answered, fetches, window)
			}
			if slowest >= requestTimeout {
				t.Errorf("the slowest refusal took %s, past the request deadline", slowest)
			}
			if !strings.Contains(logs.String(), `"severity":"ERROR","message":"Google's signing keys have expired`) {
				t.Errorf("log %q: want an ERROR once the keys had expired", logs.String())
			}
			google.Reset()
			eventually(t, 10*time.Second, func() bool {
				return call(h, "POST", "", "Authorization", "Bearer "+token).Code == http.StatusOK
			})
		})
	}
}

// checkKeysUnavailable asserts the refusal for want of keys: 503 UNAVAILABLE with Retry-After,
// saying so, and no HMAC.
func checkKeysUnavailable(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	body := w.Body.String()
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" ||
		!strings.Contains(body, `"UNAVAILABLE"`) || !strings.Contains(body, "signing keys") || strings.Contains(body, "hmac") {
		t.Errorf("got %d, Retry-After %q, %s; want 503 UNAVAILABLE for want of keys, with Retry-After and no HMAC",
			w.Code, w.Header().Get("Retry-After"), body)
	}
}
