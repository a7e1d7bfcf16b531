// Package proficienthmac is a Cloud Run function that gives a signed-in Firebase user the HMAC
// Proficient's Client API requires in X-PROFICIENT-USER-HMAC. The external ID is always the UID
// of the verified Firebase ID token, never an ID from the request body.
package proficienthmac

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
)

func init() {
	Handler = startFromEnv()
	functions.HTTP("ProficientHMAC", Handler.ServeHTTP)
}

// handler serves ProficientHMAC. It is built once per instance, in start.go.
type handler struct {
	cors           corsPolicy
	loopbackOnly   bool // emulator mode: only requests to a loopback Host
	auth           *authenticator
	appCheck       *appCheck
	secret         *cachedSecret
	log            *requestLog
	requestTimeout time.Duration // bounds everything a request waits for
	bodyTimeout    time.Duration // bounds reading its body
	inFlight       atomic.Int64  // requests being served, for a clean shutdown
}

// ServeHTTP answers one request and logs its outcome.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.inFlight.Add(1)
	defer h.inFlight.Add(-1)
	start := time.Now()
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
	h.serve(ctx, w, r, &o)
	h.log.request(r, start, &o)
}

// serve reads top to bottom: (emulator mode) loopback Host → parse → authenticate → App Check →
// authorise → secret → HMAC → respond. App Check comes before the policy, as in onCall, where
// the function's own checks run only once both tokens have passed.
//
// It fills in o rather than returning an outcome: the Admin SDK's RSA verification, the deepest
// call chain a request makes, runs on top of this frame, and a larger frame would push it past a
// goroutine's first 8 KiB of stack, doubling every connection's stack.
func (h *handler) serve(ctx context.Context, w http.ResponseWriter, r *http.Request, o *outcome) {
	if h.loopbackOnly && !isLoopbackHost(r.Host) {
		o.refuse(w, protocolREST, errHostNotLoopback)
		return
	}
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		o.code, o.reason = http.StatusNoContent, "preflight"
		if o.refusedOrigin != "" {
			o.reason = "origin_refused"
		}
		return
	}
	req, apiErr := parseRequest(r)
	o.protocol = req.protocol.String()
	if apiErr != nil {
		o.refuse(w, req.protocol, apiErr)
		return
	}
	token, apiErr := h.auth.authenticate(ctx, r.Header)
	if apiErr != nil {
		o.refuse(w, req.protocol, apiErr)
		return
	}
	o.uid = token.UID
	if o.appCheck, apiErr = h.appCheck.check(ctx, r.Header.Get("X-Firebase-AppCheck")); apiErr != nil {
		o.refuse(w, req.protocol, apiErr)
		return
	}
	if apiErr := h.auth.authorise(token, req.claimedID); apiErr != nil {
		o.refuse(w, req.protocol, apiErr)
		return
	}
	key := h.secret.key(ctx)
	if key == nil {
		o.refuse(w, req.protocol, unavailable("secret_unavailable", "The server's HMAC secret is not available yet; retry shortly.", nil))
		return
	}
	writeResult(w, req.protocol, hmacResult{HMAC: key.sign(token.UID), UserExternalID: token.UID})
	o.code, o.reason = http.StatusOK, "ok"
}

// refuse answers with e and records it in the request's outcome.
func (o *outcome) refuse(w http.ResponseWriter, p protocol, e *apiError) {
	writeError(w, p, e)
	o.code, o.refused, o.reason, o.cause = e.code, e.code, e.reason, e.cause
	if p == protocolStream {
		o.code = http.StatusOK // onCall streams its refusals in a 200
	}
}
