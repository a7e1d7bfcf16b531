package proficienthmac

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"google.golang.org/api/option"
)

// newSecret sets up the one secret source the configuration names and reads it, waiting for
// the first read at most wait: long enough to learn that the secret cannot work (and stop, so a
// bad deploy fails), short enough that a slow Secret Manager does not hold the instance back.
// Its reads in the background end with life.
func newSecret(ctx, life context.Context, cfg secretConfig, wait time.Duration, logger *slog.Logger, opts ...option.ClientOption) (*cachedSecret, error) {
	variable := cfg.kind.variable()
	var source secretSource
	switch cfg.kind {
	case secretFromValue:
		source = envSecretValue(cfg.location)
	case secretFromFile:
		source = &fileSecret{path: cfg.location, now: time.Now}
	case secretFromVersion:
		client, err := secretmanager.NewClient(ctx, opts...)
		if err != nil {
			return nil, &configError{variable, "cannot be read: no Secret Manager client (" + err.Error() + ")",
				"give the function a service account (on a laptop: gcloud auth application-default login)"}
		}
		source = secretManagerSecret{client, cfg.location}
	default:
		return nil, fmt.Errorf("no secret source of kind %d", cfg.kind)
	}
	secret := newCachedSecret(life, source, cfg.refresh, logger)
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
