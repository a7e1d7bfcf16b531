package proficienthmac

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/api/option"
)

// secretBackends are the ways to give the secret, in the order messages list them.
var secretBackends = []*secretBackend{&secretByValue, &secretInFile, &secretInSecretManager}

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
	if err := s.backend.checkValue(s.location); err != nil {
		return s, err
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

// newSecret sets up the one secret source the configuration names and reads it, waiting for
// the first read at most wait: long enough to learn that the secret cannot work (and stop, so a
// bad deploy fails), short enough that a slow Secret Manager does not hold the instance back.
// Its reads in the background end with life.
func newSecret(ctx, life context.Context, cfg secretConfig, wait time.Duration, logger *slog.Logger, opts ...option.ClientOption) (*cachedSecret, error) {
	source, err := cfg.backend.open(ctx, cfg.location, opts)
	if err != nil {
		return nil, err
	}
	secret := newCachedSecret(life, source, cfg.refresh, logger)
	result := make(chan error, 1)
	secret.startRead(func(err error) { result <- err })
	select {
	case err := <-result:
		if err != nil && isMisconfigured(err) {
			return nil, &configError{cfg.backend.variable, "cannot be used: " + err.Error(), secretFix(cfg.backend, err)}
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

// secretFix is what to do about a secret that cannot be used.
func secretFix(b *secretBackend, err error) string {
	switch {
	case errors.Is(err, errQuotedSecret):
		return "remove the quotes around the value: they would be part of the key"
	case errors.Is(err, errNotASecret):
		return "give the HMAC secret from Proficient's Project Settings (it starts with hsec_)"
	}
	return b.fix
}
