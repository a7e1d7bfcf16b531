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
	"syscall"
	"time"

	"cloud.google.com/go/compute/metadata"
	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"google.golang.org/api/option"
)

// The function as built at start, for the local runner (cmd/): Handler is what is registered
// as ProficientHMAC, and StartError the configuration error that kept it from starting, which
// the runner reports before it serves. On Cloud Run such an error stops the instance instead,
// and importing the package elsewhere (in tests) never exits.
var (
	Handler    http.Handler
	StartError error
)

const (
	// startTimeout bounds what is done before the instance serves (the metadata server).
	startTimeout = 10 * time.Second
	// startWait is how long the start waits for the secret's first read and for Google's keys:
	// long enough to learn that the secret cannot work (and stop, so a bad deploy fails), short
	// enough that a slow dependency does not hold the instance back; requests wait for the rest.
	startWait = 2 * time.Second
	// bodyTimeout bounds reading a request's body, whatever server runs the function: a real
	// body is under 1 KiB, and a client that trickles one must not hold a stopping instance.
	bodyTimeout = 5 * time.Second
	// requestTimeout bounds all a request waits for (each outbound call also has its own bound),
	// so a request under way when the instance is told to stop ends within drainLimit.
	requestTimeout = 8 * time.Second
	// drainLimit is how long a stopping instance lets requests under way finish: Cloud Run
	// allows 10 s between SIGTERM and SIGKILL.
	drainLimit = 8 * time.Second
)

// init registers the function with the Functions Framework under the name it is deployed as.
func init() {
	Handler = startFromEnv()
	functions.HTTP("ProficientHMAC", Handler.ServeHTTP)
}

// startFromEnv builds the handler from the process's environment, once, at start.
func startFromEnv() http.Handler {
	logs := newLogWriter(os.Stderr)
	cfg, err := loadConfig(os.Getenv)
	if err == nil && cfg.onCloudRun {
		// The Functions Framework writes an empty line to stdout and to stderr after every
		// request while K_SERVICE is set (its issue #8): empty entries in Cloud Logging and two
		// write(2) calls a request. It reads the variable per request; nothing else here does.
		os.Unsetenv("K_SERVICE")
	}
	var h *handler
	if err == nil {
		h, err = newHandler(context.Background(), cfg, dependencies{logs: logs})
	}
	if err != nil {
		if cfg.onCloudRun {
			newLogger(logs, slog.LevelInfo).Log(context.Background(), levelCritical, "proficient-hmac cannot start: "+err.Error())
			logs.Flush()
			os.Exit(1)
		}
		StartError = err
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeError(w, protocolREST, internalError("misconfigured", "The server is misconfigured.", nil))
		})
	}
	sigterm := make(chan os.Signal, 1)
	signal.Notify(sigterm, syscall.SIGTERM)
	go func() {
		<-sigterm
		h.drain(drainLimit)
		logs.Flush()
		os.Exit(128 + int(syscall.SIGTERM)) // as the signal would have
	}()
	return h
}

// dependencies are what tests replace at the edges: the clients' endpoints and where logs go.
type dependencies struct {
	logs           io.Writer
	authOptions    []option.ClientOption
	secretOptions  []option.ClientOption
	startWait      time.Duration // 0: startWait
	verifyTimeout  time.Duration // 0: verifyTimeout
	requestTimeout time.Duration // 0: requestTimeout
	bodyTimeout    time.Duration // 0: bodyTimeout
}

// newHandler builds the handler. Google's keys are fetched while the secret is read, so the
// first user waits for the slower of the two, not for both one after the other.
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
	if cfg.emulatorHost != "" {
		if err := checkEmulatorAtStart(ctx, cfg.emulatorHost); err != nil {
			return nil, err
		}
	}
	timeout, wait := cmp.Or(deps.verifyTimeout, verifyTimeout), cmp.Or(deps.startWait, startWait)
	// What runs in the background for the instance's life: the key refresh, the secret's reads.
	life, stop := context.WithCancel(context.Background())
	auth, keysFetched, err := newAuthenticator(ctx, life, cfg, timeout, logger, deps.authOptions...)
	if err != nil {
		stop()
		return nil, err
	}
	appCheck, err := newAppCheck(ctx, cfg, timeout, deps.authOptions)
	if err != nil {
		stop()
		return nil, err
	}
	secret, err := newSecret(ctx, life, cfg.secret, wait, logger, deps.secretOptions...)
	if err != nil {
		stop()
		return nil, err
	}
	select {
	case <-keysFetched:
	case <-time.After(wait):
	}
	return &handler{
		cors:           cfg.cors,
		loopbackOnly:   cfg.emulatorHost != "",
		auth:           auth,
		appCheck:       appCheck,
		secret:         secret,
		log:            &requestLog{log: logger, projectID: cfg.projectID},
		requestTimeout: cmp.Or(deps.requestTimeout, requestTimeout),
		bodyTimeout:    cmp.Or(deps.bodyTimeout, bodyTimeout),
		stop:           stop,
	}, nil
}

// quietTime is how long a stopping instance must see no request begin before it exits: a
// request a client had sent on a kept-alive connection is read, and begins, well within it.
const quietTime = 500 * time.Millisecond

// drain stops the instance gracefully whatever server runs the function (the Functions
// Framework's has no way to stop it): from now on every answer closes its connection, so clients
// send no more on it; and drain waits until no request is under way and none has begun for
// quietTime, or until limit passes. It reports whether the instance went quiet.
func (h *handler) drain(limit time.Duration) bool {
	begun := time.Now()
	h.lastBegun.Store(begun.UnixNano())
	h.draining.Store(true)
	for deadline := begun.Add(limit); ; time.Sleep(10 * time.Millisecond) {
		// lastBegun before inFlight: a request counts itself in before it sets lastBegun.
		if quiet := time.Since(time.Unix(0, h.lastBegun.Load())) >= quietTime; quiet && h.inFlight.Load() == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}
