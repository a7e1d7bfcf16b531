// Package proficienthmac is a Cloud Run function that gives a signed-in Firebase user the HMAC
// Proficient's Client API requires in X-PROFICIENT-USER-HMAC. The external ID is always the UID
// of the verified Firebase ID token, never an ID from the request body.
package proficienthmac

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/compute/metadata"
	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"google.golang.org/api/option"
)

func init() {
	if testing.Testing() {
		return // tests build their own handlers; importing the package must never exit
	}
	logs := newLogWriter(os.Stderr)
	h, err := newHandlerFromEnv(context.Background(), os.Getenv, logs)
	if err != nil {
		exitOnStartError(err, logs, os.Getenv("K_SERVICE") != "")
	}
	functions.HTTP("ProficientHMAC", h.ServeHTTP)
	sigterm := make(chan os.Signal, 1)
	signal.Notify(sigterm, syscall.SIGTERM)
	go shutdownOn(sigterm, h, logs)
}

// handler serves ProficientHMAC. It is built once per instance.
type handler struct {
	verify         verifyFunc
	verifyTimeout  time.Duration
	keysWarm       <-chan struct{} // closed when the key fetch begun at start has ended
	secret         *cachedSecret
	corsOrigins    map[string]bool // nil: any origin
	allowAnonymous bool
	appCheck       *appCheck
	emulator       bool
	inFlight       atomic.Int64 // requests being served, for a clean shutdown
	projectID      string
	log            *slog.Logger
}

// dependencies are what tests replace at the edges: the clients' endpoints and where logs go.
type dependencies struct {
	logs          io.Writer
	authOptions   []option.ClientOption
	secretOptions []option.ClientOption
	secretWait    time.Duration // 0: secretStartWait
	verifyTimeout time.Duration // 0: verifyTimeout
}

const (
	// startTimeout bounds what is done before the instance serves (the metadata server).
	startTimeout = 10 * time.Second
	// secretStartWait is how long the start waits for the first read of the secret: long
	// enough to learn that it cannot work (and stop, so a bad deploy fails), short enough that
	// a slow Secret Manager does not hold the instance back; requests wait for the rest.
	secretStartWait = 2 * time.Second
)

func newHandlerFromEnv(ctx context.Context, getenv func(string) string, logs io.Writer) (*handler, error) {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return nil, err
	}
	return newHandler(ctx, cfg, dependencies{logs: logs})
}

// newHandler builds the handler and reads the secret once, so that a secret that cannot work
// stops the instance at start instead of failing every request.
func newHandler(ctx context.Context, cfg config, deps dependencies) (*handler, error) {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	logger := newLogger(deps.logs, cfg.logLevel)
	if cfg.projectID == "" {
		id, err := metadata.ProjectIDWithContext(ctx)
		if err != nil || id == "" {
			return nil, &configError{"GOOGLE_CLOUD_PROJECT", "is not set and the metadata server did not say",
				fmt.Sprintf("set it to your Firebase project ID (metadata server: %v)", err)}
		}
		cfg.projectID = id
	}
	verify, err := newVerifier(ctx, cfg, deps.authOptions...)
	if err != nil {
		return nil, err
	}
	// Fetch Google's keys while the secret is read: the first user waits for the slower of
	// the two, not for both one after the other.
	timeout := cmp.Or(deps.verifyTimeout, verifyTimeout)
	keysWarm := make(chan struct{})
	go func() {
		defer close(keysWarm)
		if cfg.emulatorHost != "" {
			return // the emulator's tokens are unsigned
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := warmKeys(ctx, verify, cfg.projectID); err != nil {
			logger.Warn("Google's signing keys not fetched at start; the first request will try again", "error", err.Error())
		}
	}()
	appCheck, err := newAppCheck(ctx, cfg, timeout, deps.authOptions)
	if err != nil {
		return nil, err
	}
	secret, err := newSecret(ctx, cfg.secret, logger, deps)
	if err != nil {
		return nil, err
	}
	return &handler{
		verify:         verify,
		verifyTimeout:  timeout,
		keysWarm:       keysWarm,
		secret:         secret,
		corsOrigins:    cfg.corsOrigins,
		allowAnonymous: cfg.allowAnonymous,
		appCheck:       appCheck,
		emulator:       cfg.emulatorHost != "",
		projectID:      cfg.projectID,
		log:            logger,
	}, nil
}

// ServeHTTP answers one request and logs its outcome.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.inFlight.Add(1)
	defer h.inFlight.Add(-1)
	start := time.Now()
	h.setCommonHeaders(w, r)
	h.logRequest(r, start, h.serve(w, r))
}

// An outcome is what a request's log line tells.
type outcome struct {
	code     int
	reason   string
	form     string // "" before the body is read
	uid      string // "" before the token is verified
	appCheck string
	cause    error // for the log only
}

// serve reads top to bottom: parse → authenticate → authorise → secret → HMAC → respond.
func (h *handler) serve(w http.ResponseWriter, r *http.Request) outcome {
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return outcome{code: http.StatusNoContent, reason: "preflight"}
	}
	req, apiErr := parseRequest(r)
	if apiErr != nil {
		return refuse(w, apiErr, outcome{})
	}
	o := outcome{form: req.form.String()}
	token, apiErr := h.authenticate(r.Context(), r.Header)
	if apiErr != nil {
		return refuse(w, apiErr, o)
	}
	o.uid = token.UID
	if o.appCheck, apiErr = h.appCheck.check(r.Context(), r.Header.Get("X-Firebase-AppCheck"), h.emulator); apiErr != nil {
		return refuse(w, apiErr, o)
	}
	if apiErr := h.authorise(token, req.claimedID); apiErr != nil {
		return refuse(w, apiErr, o)
	}
	key := h.secret.key(r.Context())
	if key == nil {
		return refuse(w, unavailable("secret_unavailable", "The server's HMAC secret is not available yet; retry shortly.", nil), o)
	}
	writeResult(w, req.form, hmacResult{HMAC: key.sign(token.UID), UserExternalID: token.UID})
	o.code, o.reason = http.StatusOK, "ok"
	return o
}

func refuse(w http.ResponseWriter, e *apiError, o outcome) outcome {
	writeError(w, e)
	o.code, o.reason, o.cause = e.code, e.reason, e.cause
	return o
}

// logRequest writes the request's one log line: never the token, the secret or the HMAC. It
// runs on every request, so it builds its attributes in place.
func (h *handler) logRequest(r *http.Request, start time.Time, o outcome) {
	level := slog.LevelInfo
	switch {
	case o.code >= 500:
		level = slog.LevelError
	case o.code >= 400 || o.appCheck == appCheckInvalid: // an invalid App Check token, not enforced
		level = slog.LevelWarn
	}
	if !h.log.Enabled(r.Context(), level) {
		return
	}
	var latency [24]byte
	attrs := make([]slog.Attr, 0, 10)
	attrs = append(attrs,
		slog.Attr{Key: "httpRequest", Value: slog.GroupValue(
			slog.String("requestMethod", r.Method),
			slog.String("requestUrl", r.URL.Path),
			slog.Int("status", o.code),
			slog.String("latency", string(append(strconv.AppendFloat(latency[:0], time.Since(start).Seconds(), 'f', 6, 64), 's'))),
			slog.String("userAgent", r.UserAgent()),
			slog.String("remoteIp", r.RemoteAddr),
		)},
		slog.String("reason", o.reason))
	for _, a := range [...]struct{ key, value string }{{"form", o.form}, {"uid", o.uid}, {"appCheck", o.appCheck}} {
		if a.value != "" {
			attrs = append(attrs, slog.String(a.key, a.value))
		}
	}
	if o.cause != nil {
		attrs = append(attrs, slog.String("error", o.cause.Error()))
	}
	attrs = appendTrace(attrs, h.projectID, r.Header)
	h.log.LogAttrs(r.Context(), level, "request", attrs...)
}

// exitOnStartError stops the process on a configuration error: a CRITICAL log on Cloud Run, so
// that a bad deploy fails instead of serving errors, or one plain line for a local run.
func exitOnStartError(err error, logs *logWriter, onCloudRun bool) {
	if onCloudRun {
		newLogger(logs, slog.LevelInfo).Log(context.Background(), levelCritical,
			"proficient-hmac cannot start: "+err.Error())
		logs.Flush()
	} else {
		fmt.Fprintln(os.Stderr, "proficient-hmac: "+err.Error())
	}
	os.Exit(1)
}

// shutdownOn lets the requests under way finish when Cloud Run stops the instance with
// SIGTERM (it allows 10 s before SIGKILL; the Functions Framework's server cannot shut down
// gracefully), writes out the buffered logs, then exits as the signal would have.
func shutdownOn(sigterm <-chan os.Signal, h *handler, logs *logWriter) {
	<-sigterm
	h.drain(8 * time.Second)
	logs.Flush()
	os.Exit(128 + int(syscall.SIGTERM))
}

// drain waits until no request is being served, or limit passes. It reports whether none is.
func (h *handler) drain(limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for h.inFlight.Load() > 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}
