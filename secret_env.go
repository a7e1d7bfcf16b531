package proficienthmac

import (
	"context"

	"google.golang.org/api/option"
)

const envSecret = "PROFICIENT_HMAC_SECRET"

// secretByValue is PROFICIENT_HMAC_SECRET: the secret itself (local runs, or a Cloud Run
// --update-secrets NAME=SECRET:VERSION environment variable), read once.
var secretByValue = secretBackend{
	variable: envSecret,
	holds:    "the hsec_ value",
	byValue:  true,
	open: func(_ context.Context, value string, _ []option.ClientOption) (secretSource, error) {
		return envSecretValue(value), nil
	},
	fix: "give the HMAC secret from Proficient's Project Settings (it starts with hsec_)",
}

// envSecretValue is the value of PROFICIENT_HMAC_SECRET, checked once at start.
type envSecretValue string

func (v envSecretValue) readSecret(context.Context) ([]byte, error) { return []byte(v), nil }

var _ secretSource = envSecretValue("")
