package proficienthmac

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"regexp"
	"time"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const envSecretVersion = "PROFICIENT_HMAC_SECRET_VERSION"

var secretVersionName = regexp.MustCompile(`^projects/[^/]+/secrets/[^/]+/versions/[^/]+$`)

// secretInSecretManager is PROFICIENT_HMAC_SECRET_VERSION: a secret version read with the Secret
// Manager API, again every five minutes (a version named latest rotates).
var secretInSecretManager = secretBackend{
	variable: envSecretVersion,
	holds:    "projects/P/secrets/S/versions/V",
	refresh:  5 * time.Minute,
	check: func(version string) error {
		if !secretVersionName.MatchString(version) {
			return &configError{envSecretVersion, "is not a secret version name (it holds " + describeValue(version) + ")",
				"give the full name projects/PROJECT/secrets/NAME/versions/VERSION (VERSION may be latest)"}
		}
		return nil
	},
	open: func(ctx context.Context, version string, opts []option.ClientOption) (secretSource, error) {
		client, err := secretmanager.NewClient(ctx, opts...)
		if err != nil {
			return nil, &configError{envSecretVersion, "cannot be read: no Secret Manager client (" + err.Error() + ")",
				"give the function a service account (on a laptop: gcloud auth application-default login)"}
		}
		return secretManagerSecret{client, version}, nil
	},
	fix: "check the version exists and is enabled, and grant the runtime service account " +
		"roles/secretmanager.secretAccessor on the secret",
}

// secretManagerSecret reads PROFICIENT_HMAC_SECRET_VERSION with the Secret Manager API.
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

var _ secretSource = secretManagerSecret{}
