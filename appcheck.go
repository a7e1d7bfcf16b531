package proficienthmac

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/appcheck"
	"google.golang.org/api/option"
	htransport "google.golang.org/api/transport/http"
)

// appCheck checks the X-Firebase-AppCheck header, as callable functions do: enforced, a missing
// or invalid token is a 401; not enforced, an invalid one is logged and the request goes on.
// With replay protection each token is consumed through the App Check API, once.
type appCheck struct {
	appCheckConfig
	emulator   bool         // App Check is not emulated: tokens are not verified against the Auth emulator
	consumeURL string       // "" without replay protection
	consumer   *http.Client // authenticated with the runtime's credentials
	app        *firebase.App

	wait     time.Duration                   // how long an enforced request waits for the client
	client   atomic.Pointer[appcheck.Client] // nil until made: making it fetches the JWKS
	ready    chan struct{}                   // closed once client is made
	creating atomic.Bool                     // an attempt to make it is under way
}

// appCheckStatus is what the request's log line says of App Check.
const (
	appCheckAbsent     = "absent"
	appCheckValid      = "valid"
	appCheckInvalid    = "invalid"
	appCheckUnverified = "unverified" // emulator mode, or the client is still being made
)

func newAppCheck(ctx context.Context, cfg config, wait time.Duration, opts []option.ClientOption) (*appCheck, error) {
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: cfg.projectID}, option.WithoutAuthentication())
	if err != nil {
		return nil, fmt.Errorf("firebase.NewApp: %w", err)
	}
	a := &appCheck{appCheckConfig: cfg.appCheck, emulator: cfg.emulatorHost != "", app: app, wait: wait, ready: make(chan struct{})}
	if a.replayProtection {
		a.consumer, _, err = htransport.NewClient(ctx, append([]option.ClientOption{
			option.WithScopes("https://www.googleapis.com/auth/cloud-platform")}, opts...)...)
		if err != nil {
			return nil, &configError{"APP_CHECK_REPLAY_PROTECTION", "needs Google credentials, and none were found (" + err.Error() + ")",
				"give the function a service account with the Firebase App Check Token Verifier role, or unset it"}
		}
		a.consumer.Timeout = wait // as verification is bounded: an outage is a 503, not a hang
		a.consumeURL = "https://firebaseappcheck.googleapis.com/v1beta/projects/" + cfg.projectID + ":verifyAppCheckToken"
	}
	if a.enforce {
		a.makeClient() // at start, alongside the keys and the secret
	}
	return a, nil
}

// makeClient makes the App Check client in the background, one attempt at a time, until one
// succeeds. Making it fetches the JWKS and starts the SDK's refresh goroutine: there must be
// only one, and no request may hold a lock while it is fetched.
func (a *appCheck) makeClient() {
	if a.client.Load() != nil || !a.creating.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer a.creating.Store(false)
		c, err := a.app.AppCheck(context.Background()) // the JWKS refresh lives as long as this context
		if err != nil {
			return // the next request that needs it tries again
		}
		a.client.Store(c)
		close(a.ready)
	}()
}

// maxAppCheckToken bounds the App Check token handed to the SDK, whose decoding allocates many
// times a token's size: an App Check token is under 1 KiB.
const maxAppCheckToken = 4 << 10

// check returns the App Check status of a request and, when it must be refused, why.
func (a *appCheck) check(ctx context.Context, token string) (string, *apiError) {
	switch {
	case token == "":
		return appCheckAbsent, a.refuse(credentialMissing("app_check_missing", "This app requires App Check: send X-Firebase-AppCheck."))
	case len(token) > maxAppCheckToken: // never parsed
		return appCheckInvalid, a.refuse(appCheckRefused("app_check_too_large", "The App Check token is larger than 4 KiB, which no App Check token is.", nil))
	case a.emulator && !a.enforce:
		return appCheckUnverified, nil // App Check is not emulated
	}
	client, apiErr := a.readyClient(ctx)
	if client == nil {
		return appCheckUnverified, apiErr
	}
	if err := verifyAppCheck(client, token); err != nil {
		return appCheckInvalid, a.refuse(appCheckRefused("app_check_invalid", "The App Check token is not valid.", err))
	}
	if a.consumeURL != "" {
		if apiErr := a.consume(ctx, token); apiErr != nil {
			return appCheckInvalid, apiErr
		}
	}
	return appCheckValid, nil
}

// refuse is the refusal e where App Check is enforced; where it is not, nothing is refused and
// the log line tells what would have been.
func (a *appCheck) refuse(e *apiError) *apiError {
	if a.enforce {
		return e
	}
	return nil
}

// readyClient returns the App Check client, making it if need be. Enforced, a request waits for
// it, at most a.wait; not enforced, none waits, and nil means the token goes unverified.
func (a *appCheck) readyClient(ctx context.Context) (*appcheck.Client, *apiError) {
	if client := a.client.Load(); client != nil {
		return client, nil
	}
	a.makeClient()
	if !a.enforce {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, a.wait)
	defer cancel()
	select {
	case <-a.ready:
		return a.client.Load(), nil
	case <-ctx.Done():
		return nil, unavailable("app_check_unavailable", "App Check keys cannot be fetched right now; retry shortly.", nil)
	}
}

// verifyAppCheck is the SDK's VerifyToken, which panics on some validly signed tokens (a string
// "aud", a missing "iss" or "exp"): a panic is an invalid token, not a crash.
func verifyAppCheck(client *appcheck.Client, token string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("app check token with unexpected claims (the SDK panicked): %v", r)
		}
	}()
	_, err = client.VerifyToken(token)
	return err
}

// consume marks the token used with the App Check API, as the Node Admin SDK does for
// limited-use tokens; a token already used is a replay.
func (a *appCheck) consume(ctx context.Context, token string) *apiError {
	body, _ := json.Marshal(map[string]string{"appCheckToken": token})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.consumeURL, bytes.NewReader(body))
	if err != nil {
		return unavailable("app_check_consume_failed", "App Check cannot be reached right now; retry shortly.", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.consumer.Do(req)
	if err != nil {
		return unavailable("app_check_consume_failed", "App Check cannot be reached right now; retry shortly.", err)
	}
	defer resp.Body.Close()
	var answer struct {
		AlreadyConsumed bool `json:"alreadyConsumed"`
	}
	switch {
	case resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&answer) == nil:
		if answer.AlreadyConsumed {
			return appCheckRefused("app_check_replayed", "This App Check token was already used: get a new limited-use token.", nil)
		}
		return nil
	case resp.StatusCode == http.StatusBadRequest:
		return appCheckRefused("app_check_not_consumable", "This App Check token cannot be checked for replay: use a limited-use token.", nil)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		// The token was verified above: the API is refusing the function's own credentials.
		return internalError("app_check_consume_refused", "The server cannot check App Check tokens for replay.",
			fmt.Errorf("verifyAppCheckToken: HTTP %d", resp.StatusCode))
	}
	return unavailable("app_check_consume_failed", "App Check cannot be reached right now; retry shortly.",
		fmt.Errorf("verifyAppCheckToken: HTTP %d", resp.StatusCode))
}
