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
// secret_file.go, secret_manager.go) and listed in secretBackends; everything that concerns the
// ways to give the secret (exactly one set, its check, the refresh, emulator mode's rule, the
// messages) loops over that list.
type secretBackend struct {
	variable string        // the environment variable
	holds    string        // what its value is, as the message says when none or two are set
	refresh  time.Duration // how often a source is read again (PROFICIENT_HMAC_SECRET_REFRESH changes it); 0: never
	byValue  bool          // the value is the secret itself: the only way emulator mode allows (demo data)
	check    func(value string) error
	open     func(ctx context.Context, value string, opts []option.ClientOption) (secretSource, error)
	fix      string // what to do when a source cannot be read for good (a misconfiguredError)
}

// secretBackends are the ways to give the secret, in the order messages list them.
var secretBackends = []*secretBackend{&secretByValue, &secretInFile, &secretInSecretManager}

// secretConfig names the one place the HMAC secret comes from.
type secretConfig struct {
	backend  *secretBackend
	location string        // the variable's value: the secret itself, a path, a version's name
	refresh  time.Duration // how often it is read again; 0: never
}

const envSecretRefresh = "PROFICIENT_HMAC_SECRET_REFRESH"

// loadSecretConfig reads which one backend is set, its value, and how often it is read again.
func loadSecretConfig(getenv func(string) string) (secretConfig, error) {
	var set []secretConfig
	var names []string
	for _, b := range secretBackends {
		names = append(names, b.variable+" ("+b.holds+")")
		if v := strings.TrimSpace(getenv(b.variable)); v != "" {
			set = append(set, secretConfig{b, v, b.refresh})
		}
	}
	if len(set) != 1 {
		problem, variable := "is not set", secretBackends[0].variable
		if len(set) > 1 {
			problem, variable = "is set together with "+set[1].backend.variable, set[0].backend.variable
		}
		return secretConfig{}, &configError{variable, problem, "set exactly one of " + strings.Join(names, ", ")}
	}
	s := set[0]
	if s.backend.check != nil {
		if err := s.backend.check(s.location); err != nil {
			return s, err
		}
	}
	if v := getenv(envSecretRefresh); v != "" {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil || d < time.Second:
			// Described, never echoed: it is the fourth variable named like the secret.
			return s, &configError{envSecretRefresh, "is not a Go duration of at least 1s (it holds " + describeValue(v) + ")",
				"give a Go duration of at least 1s, such as 5m"}
		case s.refresh == 0:
			return s, &configError{envSecretRefresh, "is set, but " + s.backend.variable + " is read once, at start",
				"unset it; it sets how often a file or a Secret Manager version is read again"}
		}
		s.refresh = d
	}
	return s, nil
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
