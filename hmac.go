package proficienthmac

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strings"
)

// errNotASecret is a value that cannot be a Proficient HMAC secret; errQuotedSecret, one pasted
// with the quotes around it (a .env file or a shell that kept them).
var (
	errNotASecret   = errors.New("not a Proficient HMAC secret")
	errQuotedSecret = errors.New("the value is quoted")
)

// parseSecret trims what was stored and checks that it is a Proficient HMAC secret. Its errors
// never contain the value.
func parseSecret(raw []byte) ([]byte, error) {
	key := strings.TrimSpace(string(raw))
	switch {
	case len(key) >= 2 && (key[0] == '"' || key[0] == '\'') && key[len(key)-1] == key[0]:
		return nil, misconfiguredError{fmt.Errorf("%w: %w (%d bytes, with %c at both ends)", errNotASecret, errQuotedSecret, len(key), key[0])}
	case !strings.HasPrefix(key, "hsec_"):
		return nil, misconfiguredError{fmt.Errorf("%w: the value (%d bytes after trimming) does not start with hsec_", errNotASecret, len(key))}
	case len(key) == len("hsec_"):
		return nil, misconfiguredError{fmt.Errorf("%w: the value is only the prefix hsec_, with nothing after it", errNotASecret)}
	}
	return []byte(key), nil
}

// An hmacKey signs UIDs with one version of the secret. The keyed HMAC state is made once and
// cloned for each UID: making it hashes the key's pads every time.
type hmacKey struct {
	keyed hash.Cloner
}

func newHMACKey(secret []byte) *hmacKey {
	return &hmacKey{hmac.New(sha256.New, secret).(hash.Cloner)}
}

// sign is base64(HMAC-SHA256(key = secret, message = UID)), as Proficient requires.
func (k *hmacKey) sign(uid string) string {
	mac, _ := k.keyed.Clone() // crypto/hmac over SHA-256 always clones
	mac.Write([]byte(uid))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
