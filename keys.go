package proficienthmac

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"firebase.google.com/go/v4/auth"
	"github.com/go-json-experiment/json"
)

// Google's token signing keys are refreshed by the function, not on a request's path.
//
// The Admin SDK caches the keys for their max-age, but when they expire it empties its cache
// before fetching them again, under a mutex held across the fetch. With Google's endpoint
// failing, every request then fails (though the old keys would verify every live token), every
// request fetches again, and requests queued on the mutex outlive their deadline. So here, at half
// the keys' lifetime, a new Admin SDK client is built in the background, made to fetch the keys,
// and swapped in only once that fetch succeeded: an outage shorter than half the keys' lifetime
// (hours, with Google's max-age) fails no live token, and no request waits on a key fetch. Once
// the keys have expired with none newer, requests get 503 at once while the background tries
// again each second. Old keys are trusted no longer than Google's max-age says, as the SDK would.

// googleKeysURL is where the Admin SDK fetches the keys that sign ID tokens.
const googleKeysURL = "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"

// errKeysUnavailable: there are no keys that have not expired; the refresh is trying again.
var errKeysUnavailable = errors.New("no unexpired signing keys: Google's key endpoint failed at every refresh since they expired")

// verifyFunc checks a Firebase ID token and returns its claims: the Admin SDK's
// VerifyIDToken or VerifyIDTokenAndCheckRevoked, for the project or for one tenant.
type verifyFunc func(ctx context.Context, idToken string) (*auth.Token, error)

// A keyedVerifier is an Admin SDK client whose cached keys are good until expires: before then,
// verifying a token never fetches them.
type keyedVerifier struct {
	verify   verifyFunc
	expires  time.Time
	lifetime time.Duration // the keys' max-age when fetched
}

// keyRefresher holds the verifier requests use, and replaces it before its keys expire.
type keyRefresher struct {
	build     func(context.Context) (verifyFunc, error) // a new Admin SDK client, its cache empty
	projectID string
	timeout   time.Duration // bounds each refresh
	log       *slog.Logger

	current    atomic.Pointer[keyedVerifier]
	started    chan struct{} // closed when the first refresh has ended, well or not
	lastLogged time.Time     // of a failure once the keys have expired (only run touches it)
}

func newKeyRefresher(build func(context.Context) (verifyFunc, error), projectID string, timeout time.Duration, log *slog.Logger) *keyRefresher {
	return &keyRefresher{build: build, projectID: projectID, timeout: timeout, log: log, started: make(chan struct{})}
}

const (
	retryMin = time.Second     // after a failed refresh, and always once the keys have expired
	retryMax = 5 * time.Minute // the longest wait between tries while the keys are good
)

// verify checks a token with the current verifier, or fails at once if its keys have expired.
// Before the first refresh has ended, it waits for it (at most as long as ctx).
func (k *keyRefresher) verify(ctx context.Context, idToken string) (*auth.Token, error) {
	v := k.current.Load()
	if v == nil {
		select {
		case <-k.started:
			v = k.current.Load()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if v == nil || !time.Now().Before(v.expires) {
		return nil, errKeysUnavailable
	}
	return v.verify(ctx, idToken)
}

// run refreshes the keys until ctx ends: at half their lifetime; after a failure, again with a
// growing wait while the current keys are good, but at most half their remaining life apart, so
// the last tries come shortly before they expire; each second once they have expired.
func (k *keyRefresher) run(ctx context.Context) {
	retry := retryMin
	for first := true; ; first = false {
		next, err := k.refresh(ctx)
		if err != nil {
			k.logFailure(err, first)
			now, v := time.Now(), k.current.Load()
			next = now.Add(retryMin)
			if v != nil && now.Before(v.expires) {
				next = now.Add(max(retryMin, min(retry, v.expires.Sub(now)/2)))
				retry = min(2*retry, retryMax)
			}
		} else {
			retry = retryMin
		}
		if first {
			close(k.started) // after the failure is logged: a start that waits for it finds it there
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
	}
}

// refresh has a new Admin SDK client fetch the keys while it reads their lifetime from Google's
// endpoint (the two at once: a cold start waits for one round trip, not two), and makes it the
// current verifier. It returns when to refresh next.
func (k *keyRefresher) refresh(ctx context.Context) (time.Time, error) {
	timeout := k.timeout
	if v := k.current.Load(); v != nil {
		timeout = min(timeout, v.lifetime/4) // a hanging fetch leaves time to try again
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	fetched := time.Now() // before both fetches: the SDK's copy expires no sooner than this says
	type lifetime struct {
		maxAge time.Duration
		err    error
	}
	read := make(chan lifetime, 1)
	go func() {
		maxAge, err := keysMaxAge(ctx)
		read <- lifetime{maxAge, err}
	}()
	verify, err := k.build(ctx)
	if err == nil {
		err = warmKeys(ctx, verify, k.projectID)
	}
	life := <-read
	if err = cmp.Or(err, life.err); err != nil {
		return time.Time{}, err
	}
	k.current.Store(&keyedVerifier{verify: verify, expires: fetched.Add(life.maxAge), lifetime: life.maxAge})
	return fetched.Add(life.maxAge / 2), nil
}

// keysMaxAge asks Google's key endpoint how long its keys may be cached (Cache-Control max-age),
// as the SDK will when it fetches them.
func keysMaxAge(ctx context.Context) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, googleKeysURL, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req) // no credentials: the keys are public
	if err != nil {
		return 0, fmt.Errorf("the key endpoint: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("the key endpoint answered HTTP %d", resp.StatusCode)
	}
	for directive := range strings.SplitSeq(resp.Header.Get("Cache-Control"), ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(directive), "=")
		if seconds, err := strconv.Atoi(value); strings.EqualFold(name, "max-age") && err == nil && seconds > 0 {
			return time.Duration(seconds) * time.Second, nil
		}
	}
	return 0, fmt.Errorf("the key endpoint gave no max-age (Cache-Control %.100q): the SDK would not cache its keys", resp.Header.Get("Cache-Control"))
}

// logFailure logs a failed refresh: each one while the current keys are good (they are tried
// with a growing wait), once a minute after they have expired (tried each second).
func (k *keyRefresher) logFailure(err error, first bool) {
	v := k.current.Load()
	switch {
	case first:
		k.log.Warn("Google's signing keys not fetched at start; requests get 503 until a fetch succeeds, tried each second", "error", err.Error())
	case v != nil && time.Now().Before(v.expires):
		k.log.Warn("Google's signing keys not refreshed; the current ones stay in use until they expire", "expires", v.expires.UTC().Format(time.RFC3339), "error", err.Error())
	case time.Since(k.lastLogged) >= time.Minute:
		k.lastLogged = time.Now()
		k.log.Error("Google's signing keys have expired and cannot be fetched; requests get 503, and the fetch is tried each second", "error", err.Error())
	}
}

// warmKeys has the Admin SDK fetch and cache Google's signing keys. The SDK has no call for
// that, but verifying a well-formed token with an unknown key ID fetches the keys before the
// signature check fails, as it must.
func warmKeys(ctx context.Context, verify verifyFunc, projectID string) error {
	now := time.Now().Unix()
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"proficient-hmac-warm-up","typ":"JWT"}`))
	claims, _ := json.Marshal(map[string]any{
		"iss": "https://securetoken.google.com/" + projectID, "aud": projectID,
		"sub": "warm-up", "iat": now, "exp": now + 60,
	})
	_, err := verify(ctx, header+"."+base64.RawURLEncoding.EncodeToString(claims)+".c2ln")
	if auth.IsCertificateFetchFailed(err) {
		return err
	}
	return nil
}
