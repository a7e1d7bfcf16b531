package proficienthmac

import "context"

// envSecretValue is the value of PROFICIENT_HMAC_SECRET, checked once at start.
type envSecretValue string

func (v envSecretValue) readSecret(context.Context) ([]byte, error) { return []byte(v), nil }

var _ secretSource = envSecretValue("")
