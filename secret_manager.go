package proficienthmac

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

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

var _ secretSource = secretManagerSecret{}
