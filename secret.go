package proficienthmac

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"google.golang.org/api/option"
)

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
