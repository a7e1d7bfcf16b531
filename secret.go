package proficienthmac

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/api/option"
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

// fileSecret is PROFICIENT_HMAC_SECRET_FILE, such as a Cloud Run secret volume mount. A file
// rewritten in place can be read half-written, so a content is taken only once two reads in a
// row agree; until then the last settled content stands. At start, with none settled, the file
// is read twice at once.
type fileSecret struct {
	path string

	mu      sync.Mutex
	last    []byte // what the last read found
	settled []byte // what two reads in a row found
}

func (f *fileSecret) readSecret(context.Context) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := f.read()
	if err == nil && f.last == nil { // the first read: read again at once to compare
		f.last = b
		b, err = f.read()
	}
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(b, f.last) {
		f.last = b
		if f.settled == nil {
			return nil, errors.New("the file changed between two reads (being written?); it is read again shortly")
		}
		return f.settled, nil // changing: wait for the next read to agree
	}
	f.settled = b
	return b, nil
}

func (f *fileSecret) read() ([]byte, error) {
	b, err := os.ReadFile(f.path)
	if err != nil {
		// Never the path itself: a secret pasted into the variable would be printed.
		return nil, misconfiguredError{fmt.Errorf("the file cannot be read (%s; the variable holds %s)", fileProblem(err), describeValue(f.path))}
	}
	return b, nil
}

// fileProblem is an os.ReadFile error without the path it carries.
func fileProblem(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "no such file"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	}
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		return pathErr.Err.Error()
	}
	return "unreadable"
}

// describeValue tells what a secret variable holds by its length and shape, never its value.
func describeValue(v string) string {
	switch {
	case strings.HasPrefix(strings.TrimSpace(v), "hsec_"):
		return fmt.Sprintf("%d characters starting with hsec_: that looks like the secret itself, not a path or a version name", len(v))
	case strings.HasPrefix(v, "/"):
		return fmt.Sprintf("an absolute path of %d characters", len(v))
	case strings.HasPrefix(v, "projects/"):
		return fmt.Sprintf("%d characters starting with projects/", len(v))
	}
	return fmt.Sprintf("%d characters", len(v))
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
	_ secretSource = (*fileSecret)(nil)
	_ secretSource = secretManagerSecret{}
)

// errNotASecret is a value that cannot be a Proficient HMAC secret; errQuotedSecret, one pasted
// with the quotes around it (a .env file or a shell that kept them).
var (
	errNotASecret   = errors.New("not a Proficient HMAC secret")
	errQuotedSecret = errors.New("the value is quoted")
)

// parseSecret trims what was stored and checks that it is a Proficient HMAC secret. Its errors
// never contain the value.
func parseSecret(raw []byte) ([]byte, error) {
	key := strings.TrimSpace(string(raw))
	switch {
	case len(key) >= 2 && (key[0] == '"' || key[0] == '\'') && key[len(key)-1] == key[0]:
		return nil, misconfiguredError{fmt.Errorf("%w: %w (%d bytes, with %c at both ends)", errNotASecret, errQuotedSecret, len(key), key[0])}
	case !strings.HasPrefix(key, "hsec_"):
		return nil, misconfiguredError{fmt.Errorf("%w: the value (%d bytes after trimming) does not start with hsec_", errNotASecret, len(key))}
	case len(key) == len("hsec_"):
		return nil, misconfiguredError{fmt.Errorf("%w: the value is only the prefix hsec_, with nothing after it", errNotASecret)}
	}
	return []byte(key), nil
}

// An hmacKey signs UIDs with one version of the secret. The keyed HMAC state is made once and
// cloned for each UID: making it hashes the key's pads every time.
type hmacKey struct {
	keyed hash.Cloner
}

func newHMACKey(secret []byte) *hmacKey {
	return &hmacKey{hmac.New(sha256.New, secret).(hash.Cloner)}
}

// sign is base64(HMAC-SHA256(key = secret, message = UID)), as Proficient requires.
func (k *hmacKey) sign(uid string) string {
	mac, _ := k.keyed.Clone() // crypto/hmac over SHA-256 always clones
	mac.Write([]byte(uid))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
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

	state   atomic.Pointer[secretState]
	reading atomic.Pointer[chan struct{}] // the read under way, closed when it ends; nil when none is
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
	}
	c.state.Store(&secretState{})
	return c
}

// startRead begins a read in the background unless one is under way. report is given the
// read's error (nil when it succeeded) before the read counts as ended.
func (c *cachedSecret) startRead(report func(error)) {
	done := make(chan struct{})
	if !c.reading.CompareAndSwap(nil, &done) {
		return
	}
	go func() {
		report(c.refresh(context.Background()))
		c.reading.Store(nil)
		close(done)
	}()
}

// key returns the cached secret, or nil while there is none. With none yet, a request waits
// for the read under way, if any (each read is bounded by timeout). key starts a refresh when
// one is due and none is under way.
func (c *cachedSecret) key(ctx context.Context) *hmacKey {
	s := c.state.Load()
	if done := c.reading.Load(); s.key == nil && done != nil {
		select {
		case <-*done:
		case <-ctx.Done():
		}
		s = c.state.Load()
	}
	if (s.key == nil || c.ttl > 0) && !c.now().Before(s.due) {
		c.startRead(func(err error) {
			if err != nil {
				c.logRefreshError(err)
			}
		})
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
// the first read at most wait: long enough to learn that the secret cannot work (and stop, so a
// bad deploy fails), short enough that a slow Secret Manager does not hold the instance back.
func newSecret(ctx context.Context, cfg secretConfig, wait time.Duration, logger *slog.Logger, opts ...option.ClientOption) (*cachedSecret, error) {
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
		source, ttl, variable = &fileSecret{path: cfg.file}, time.Second, envSecretFile
	default:
		client, err := secretmanager.NewClient(ctx, opts...)
		if err != nil {
			return nil, &configError{envSecretVersion, "cannot be read: no Secret Manager client (" + err.Error() + ")",
				"give the function a service account (on a laptop: gcloud auth application-default login)"}
		}
		source, ttl, variable = secretManagerSecret{client, cfg.version}, cfg.refresh, envSecretVersion
	}
	secret := newCachedSecret(source, ttl, logger)
	result := make(chan error, 1)
	secret.startRead(func(err error) { result <- err })
	select {
	case err := <-result:
		if err != nil && isMisconfigured(err) {
			return nil, &configError{variable, "cannot be used: " + err.Error(), secretFix(variable, err)}
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

func secretFix(variable string, err error) string {
	switch {
	case errors.Is(err, errQuotedSecret):
		return "remove the quotes around the value: they would be part of the key"
	case errors.Is(err, errNotASecret):
		return "give the HMAC secret from Proficient's Project Settings (it starts with hsec_)"
	case variable == envSecretFile:
		return "check the path: it must name a file holding the secret (a --set-secrets /path=SECRET:latest " +
			"volume mount); to give the value itself, use " + envSecret
	}
	return "check the version exists and is enabled, and grant the runtime service account " +
		"roles/secretmanager.secretAccessor on the secret"
}
