// Package proficienthmac is a Cloud Run function that gives a signed-in Firebase user the HMAC
// Proficient's Client API requires in X-PROFICIENT-USER-HMAC. The external ID is always the UID
// of the verified Firebase ID token, never an ID from the request body.
package proficienthmac

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"
)

// handler serves ProficientHMAC. It is built once per instance, in start.go.
type handler struct {
	cors           corsPolicy
	loopbackOnly   bool // emulator mode: only requests from this machine to this machine
	auth           *authenticator
	appCheck       *appCheck
	secret         *cachedSecret
	log            *requestLog
	requestTimeout time.Duration // bounds everything a request waits for
	bodyTimeout    time.Duration // bounds reading its body
	inFlight       atomic.Int64  // requests being served, for a clean shutdown
	draining       atomic.Bool   // SIGTERM came: answers close their connections
	lastBegun      atomic.Int64  // while draining, when the last request began (Unix ns)
	stop           func()        // ends what runs in the background (tests; an instance never stops it)
}

// ServeHTTP answers one request and logs its outcome.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.inFlight.Add(1)
	defer h.inFlight.Add(-1)
	start := time.Now()
	if h.draining.Load() {
		w.Header().Set("Connection", "close") // the instance is stopping: send the next request elsewhere
		h.lastBegun.Store(start.UnixNano())
	}
	ctx, cancel := context.WithDeadline(r.Context(), start.Add(h.requestTimeout))
	defer cancel()
	if r.ContentLength != 0 {
		// The Functions Framework's server sets no timeouts; a recorder in tests cannot take one.
		// Only with a body: without one, net/http already reads the connection in the
		// background, and a deadline there would cancel the request's context.
		_ = http.NewResponseController(w).SetReadDeadline(start.Add(h.bodyTimeout))
	}
	var o outcome
	o.refusedOrigin = h.cors.setHeaders(w, r)
	p, result, apiErr := h.serve(ctx, r, &o)
	switch {
	case apiErr != nil:
		writeError(w, p, apiErr)
		o.recordRefusal(p, apiErr)
	case r.Method == http.MethodOptions:
		w.WriteHeader(http.StatusNoContent)
		o.code, o.reason = http.StatusNoContent, "preflight"
		if o.refusedOrigin != "" {
			o.reason = "origin_refused"
		}
	default:
		writeResult(w, p, result)
		o.code, o.reason = http.StatusOK, "ok"
	}
	h.log.request(r, start, &o)
}

// serve reads top to bottom: (emulator mode) a request from this machine → parse → authenticate → App Check →
// authorise → secret → HMAC. App Check comes before the policy, as in onCall, where the
// function's own checks run only once both tokens have passed. It returns the protocol to
// answer in and the result or the refusal, and records in o what it learnt of the caller.
//
// o is filled in through a pointer rather than returned: the Admin SDK's RSA verification, the
// deepest call chain a request makes, runs on top of this frame, and a larger frame would push
// it past a goroutine's first 8 KiB of stack, doubling every connection's stack.
func (h *handler) serve(ctx context.Context, r *http.Request, o *outcome) (protocol, hmacResult, *apiError) {
	if h.loopbackOnly {
		if apiErr := refuseUnlessLocal(r); apiErr != nil {
			return protocolREST, hmacResult{}, apiErr
		}
	}
	if r.Method == http.MethodOptions {
		return protocolREST, hmacResult{}, nil // a preflight: the CORS headers are the answer
	}
	req, apiErr := parseRequest(r)
	o.protocol = req.protocol.String()
	if apiErr != nil {
		return req.protocol, hmacResult{}, apiErr
	}
	caller, apiErr := h.auth.authenticate(ctx, r.Header)
	if apiErr != nil {
		return req.protocol, hmacResult{}, apiErr
	}
	o.uid = caller.uid
	if o.appCheck, apiErr = h.appCheck.check(ctx, r.Header.Get("X-Firebase-AppCheck")); apiErr != nil {
		return req.protocol, hmacResult{}, apiErr
	}
	if apiErr := h.auth.authorise(caller, req.claimedID); apiErr != nil {
		return req.protocol, hmacResult{}, apiErr
	}
	key := h.secret.key(ctx)
	if key == nil {
		return req.protocol, hmacResult{}, unavailable("secret_unavailable", "The server's HMAC secret is not available yet; retry shortly.", nil)
	}
	return req.protocol, hmacResult{HMAC: key.sign(caller.uid), UserExternalID: caller.uid}, nil
}

// recordRefusal records a refusal sent in protocol p.
func (o *outcome) recordRefusal(p protocol, e *apiError) {
	o.code, o.refused, o.reason, o.cause = e.code, e.code, e.reason, e.cause
	if p == protocolStream {
		o.code = http.StatusOK // onCall streams its refusals in a 200
	}
}
