package proficienthmac

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/api/option"
)

// A secretSource reads the HMAC secret, as stored, from wherever it is kept.
type secretSource interface {
	readSecret(ctx context.Context) ([]byte, error)
}

// A secretBackend is one way to give the function its secret: an environment variable, and how a
// source is made from its value. Each is defined in a file of its own (secret_env.go,
// secret_file.go, secret_manager.go) and listed in secretBackends (secret.go); everything that
// concerns the ways to give the secret (exactly one set, its check, the refresh, emulator mode's
// rule, the messages) loops over that list.
type secretBackend struct {
	variable string        // the environment variable
	holds    string        // what its value is, as the message says when none or two are set
	refresh  time.Duration // how often a source is read again (PROFICIENT_HMAC_SECRET_REFRESH changes it); 0: never
	byValue  bool          // the value is the secret itself: the only way emulator mode allows (demo data)
	check    func(value string) error
	open     func(ctx context.Context, value string, opts []option.ClientOption) (secretSource, error)
	fix      string // what to do when a source cannot be read for good (a misconfiguredError)
}

// checkValue refuses a value this backend cannot use, before it is opened. The secret pasted into
// a variable meant for a path or a name is refused here for every backend, not in each: a
// backend's own errors would otherwise carry it into a message or a log line.
func (b *secretBackend) checkValue(value string) error {
	if !b.byValue && strings.HasPrefix(value, "hsec_") {
		return &configError{b.variable, "holds " + describeValue(value),
			"give the secret itself in " + secretByValue.variable + ", or " + b.variable + " its " + b.holds}
	}
	if b.check != nil {
		return b.check(value)
	}
	return nil
}

// secretConfig names the one place the HMAC secret comes from.
type secretConfig struct {
	backend  *secretBackend
	location string        // the variable's value: the secret itself, a path, a version's name
	refresh  time.Duration // how often it is read again; 0: never
}

// A misconfiguredError is a failure that retrying will not mend: a missing or unreadable file, a
// secret version that does not exist or may not be read, a value that is not an hsec_ key.
type misconfiguredError struct{ err error }

func (e misconfiguredError) Error() string { return e.err.Error() }
func (e misconfiguredError) Unwrap() error { return e.err }

func isMisconfigured(err error) bool { return errors.As(err, new(misconfiguredError)) }

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
