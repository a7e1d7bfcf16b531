package proficienthmac

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A secretSource reads the HMAC secret, as stored, from wherever it is kept.
type secretSource interface {
	readSecret(ctx context.Context) ([]byte, error)
}

// A misconfiguredError is a failure that retrying will not mend: a missing or unreadable file, a
// secret version that does not exist or may not be read, a value that is not an hsec_ key.
type misconfiguredError struct{ err error }

func (e misconfiguredError) Error() string { return e.err.Error() }
func (e misconfiguredError) Unwrap() error { return e.err }

func isMisconfigured(err error) bool { return errors.As(err, new(misconfiguredError)) }

// envSecretValue is the value of PROFICIENT_HMAC_SECRET, checked once at start.
type envSecretValue string

func (v envSecretValue) readSecret(context.Context) ([]byte, error) { return []byte(v), nil }

// fileSecret is PROFICIENT_HMAC_SECRET_FILE, such as a Cloud Run secret volume mount.
type fileSecret string

func (f fileSecret) readSecret(context.Context) ([]byte, error) {
	b, err := os.ReadFile(string(f))
	if err != nil {
		return nil, misconfiguredError{err} // missing, unreadable, a directory: none mends itself
	}
	return b, nil
}

// secretManagerSecret is PROFICIENT_HMAC_SECRET_VERSION, read with the Secret Manager API.
type secretManagerSecret struct {
	client  *secretmanager.Client
	version string
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func (s secretManagerSecret) readSecret(ctx context.Context) ([]byte, error) {
	resp, err := s.client.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: s.version})
	if err != nil {
		st := status.Convert(err)
		switch st.Code() {
		case codes.NotFound, codes.PermissionDenied, codes.FailedPrecondition, codes.InvalidArgument, codes.Unauthenticated:
			return nil, misconfiguredError{fmt.Errorf("the Secret Manager API answered %s: %s", st.Code(), st.Message())}
		}
		return nil, fmt.Errorf("the Secret Manager API answered %s: %s", st.Code(), st.Message())
	}
	data := resp.GetPayload().GetData()
	if sum := resp.GetPayload().DataCrc32C; sum != nil && int64(crc32.Checksum(data, castagnoli)) != *sum {
		return nil, errors.New("the Secret Manager payload failed its CRC32C check")
	}
	return data, nil
}

// Compile-time checks that each source is one.
var (
	_ secretSource = envSecretValue("")
	_ secretSource = fileSecret("")
	_ secretSource = secretManagerSecret{}
)

// parseSecret trims what was stored and checks that it is a Proficient HMAC secret. Its errors
// never contain the value.
func parseSecret(raw []byte) ([]byte, error) {
	key := strings.TrimSpace(string(raw))
	if !strings.HasPrefix(key, "hsec_") || len(key) == len("hsec_") {
		return nil, misconfiguredError{fmt.Errorf("the value (%d bytes after trimming) does not start with hsec_", len(key))}
	}
	return []byte(key), nil
}

// An hmacKey signs UIDs with one version of the secret. Its HMAC states are pooled, with their
// buffers: building one (hmac.New) is most of the cost of an HMAC.
type hmacKey struct {
	signers sync.Pool
}

type signer struct {
	mac hash.Hash
	buf []byte // the UID, then the sum
}

func newHMACKey(secret []byte) *hmacKey {
	k := &hmacKey{}
	k.signers.New = func() any { return &signer{mac: hmac.New(sha256.New, secret)} }
	return k
}

// sign is base64(HMAC-SHA256(key = secret, message = UID)), as Proficient requires.
func (k *hmacKey) sign(uid string) string {
	s := k.signers.Get().(*signer)
	defer k.signers.Put(s)
	s.mac.Reset()
	s.buf = append(s.buf[:0], uid...)
	s.mac.Write(s.buf)
	s.buf = s.mac.Sum(s.buf[:0])
	return base64.StdEncoding.EncodeToString(s.buf)
}

// A cachedSecret serves the secret from memory and refreshes it in the background when it is
// due, so no request ever waits on Secret Manager or the disk. A failed refresh keeps the last
// good value and is tried again after retryDelay.
type cachedSecret struct {
	source     secretSource
	ttl        time.Duration // 0: never refresh
	retryDelay time.Duration
	timeout    time.Duration // bounds one read
	now        func() time.Time
	log        *slog.Logger

	state      atomic.Pointer[secretState]
	refreshing atomic.Bool
	firstRead  chan struct{}  // closed when the first read has ended, well or not
	background sync.WaitGroup // reads under way; tests wait on it
}

type secretState struct {
	key *hmacKey  // nil until the first good read
	due time.Time // when to read again
}

func newCachedSecret(source secretSource, ttl time.Duration, log *slog.Logger) *cachedSecret {
	c := &cachedSecret{
		source:     source,
		ttl:        ttl,
		retryDelay: min(ttl, 5*time.Second),
		timeout:    10 * time.Second,
		now:        time.Now,
		log:        log,
		firstRead:  make(chan struct{}),
	}
	c.state.Store(&secretState{})
	return c
}

// start begins the first read in the background and returns where its result will arrive.
func (c *cachedSecret) start() <-chan error {
	result := make(chan error, 1)
	c.refreshing.Store(true)
	c.background.Add(1)
	go func() {
		defer c.background.Done()
		err := c.refresh(context.Background())
		c.refreshing.Store(false)
		close(c.firstRead)
		result <- err
	}()
	return result
}

// key returns the cached secret, or nil while there is none. A request that comes while the
// first read is still under way waits for it (each read is bounded by timeout). key starts a
// refresh when one is due and none is under way.
func (c *cachedSecret) key(ctx context.Context) *hmacKey {
	s := c.state.Load()
	if s.key == nil {
		select {
		case <-c.firstRead:
		case <-ctx.Done():
		}
		s = c.state.Load()
	}
	if (s.key == nil || c.ttl > 0) && !c.now().Before(s.due) && c.refreshing.CompareAndSwap(false, true) {
		c.background.Add(1)
		go func() {
			defer c.background.Done()
			defer c.refreshing.Store(false)
			if err := c.refresh(context.Background()); err != nil {
				c.logRefreshError(err)
			}
		}()
	}
	return s.key
}

// refresh reads the source once. On failure the last good value stays.
func (c *cachedSecret) refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	raw, err := c.source.readSecret(ctx)
	if err == nil {
		var secret []byte
		if secret, err = parseSecret(raw); err == nil {
			c.state.Store(&secretState{key: newHMACKey(secret), due: c.now().Add(c.ttl)})
			return nil
		}
	}
	c.state.Store(&secretState{key: c.state.Load().key, due: c.now().Add(c.retryDelay)})
	return err
}

func (c *cachedSecret) logRefreshError(err error) {
	if c.state.Load().key != nil {
		c.log.Warn("secret refresh failed; still using the last good value", "error", err.Error())
		return
	}
	c.log.Error("secret unavailable; answering 503 until it can be read", "error", err.Error())
}

// newSecret sets up the one secret source the configuration names and reads it, waiting for
// the first read at most deps.secretWait.
func newSecret(ctx context.Context, cfg secretConfig, logger *slog.Logger, deps dependencies) (*cachedSecret, error) {
	var (
		source   secretSource
		ttl      time.Duration
		variable string
	)
	switch {
	case cfg.value != "":
		source, variable = envSecretValue(cfg.value), envSecret
	case cfg.file != "":
		// A secret volume mount changes in place when the secret rotates: look again every second.
		source, ttl, variable = fileSecret(cfg.file), time.Second, envSecretFile
	default:
		client, err := secretmanager.NewClient(ctx, deps.secretOptions...)
		if err != nil {
			return nil, &configError{envSecretVersion, "cannot be read: no Secret Manager client (" + err.Error() + ")",
				"give the function a service account (on a laptop: gcloud auth application-default login)"}
		}
		source, ttl, variable = secretManagerSecret{client, cfg.version}, cfg.refresh, envSecretVersion
	}
	secret := newCachedSecret(source, ttl, logger)
	wait := cmp.Or(deps.secretWait, secretStartWait)
	result := secret.start()
	select {
	case err := <-result:
		if err != nil && isMisconfigured(err) {
			return nil, &configError{variable, "cannot be used: " + err.Error(), secretFix(variable)}
		}
		if err != nil {
			// A passing failure at start: serve anyway (503 until a background read succeeds).
			logger.Warn("secret not read at start; will retry", "error", err.Error())
		}
	case <-time.After(wait):
		logger.Warn("secret still being read after " + wait.String() + "; serving, and requests wait for it")
		go func() {
			if err := <-result; err != nil {
				secret.logRefreshError(err)
			}
		}()
	}
	return secret, nil
}

func secretFix(variable string) string {
	if variable == envSecretVersion {
		return "check the version exists and is enabled, and grant the runtime service account " +
			"roles/secretmanager.secretAccessor on the secret"
	}
	return "give the HMAC secret from Proficient's Project Settings (it starts with hsec_)"
}
