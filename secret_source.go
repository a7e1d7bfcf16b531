package proficienthmac

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
