package proficienthmac

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestHMACVectors checks hmacKey.sign and the whole handler against values computed independently:
// printf %s "$UID" | openssl dgst -sha256 -hmac "$SECRET" -binary | base64, and Node's
// crypto.createHmac('sha256', secret).update(uid).digest('base64'), which agreed.
func TestHMACVectors(t *testing.T) {
	h, _ := newTestHandler(t, testConfig(), dependencies{})
	tests := []struct {
		name, uid, want string
	}{
		{"Firebase UID from Proficient's docs", testUID, testUIDHMAC},
		{"one character", "a", "uFWRhfpBt2VsMhcXPgZZDYFqkP3cTp3YxJI6/PfxmUE="},
		{"UTF-8 custom UID", "ユーザー🔑-ñ", "cczUn6h7Oni5LISJADkG1kjkLXrQgQooESI5Q804MHA="},
		{"128-byte UID", strings.Repeat("u", 128), "3jdpUPdbFAuYzcu2sDzBiXzmfmuJZEQ3DkugItAuYmg="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := newHMACKey([]byte(testSecret)).sign(tt.uid); got != tt.want {
				t.Errorf("sign: got %q, want %q", got, tt.want)
			}
			w := call(h, "POST", `{"data":null}`, "Content-Type", "application/json",
				"Authorization", "Bearer "+idToken(t, claimsFor(tt.uid, nil)))
			if w.Code != http.StatusOK {
				t.Fatalf("status: got %d, want 200 (%s)", w.Code, w.Body.String())
			}
			checkHMAC(t, decode(t, w), protocolCallable, tt.uid, tt.want)
		})
	}
}

// TestQuotedSecret: a secret pasted with its quotes (a .env file, a shell that kept them) is a
// configuration error that says so, from any source, without printing the value.
func TestQuotedSecret(t *testing.T) {
	file := filepath.Join(t.TempDir(), "hmac-secret")
	writeSecretFile(t, file, `"hsec_sk_live_leak"`+"\n")
	tests := []struct {
		name     string
		secret   secretConfig
		variable string
	}{
		{"double quotes", secretConfig{backend: &secretByValue, location: `"hsec_sk_live_leak"`}, envSecret},
		{"single quotes", secretConfig{backend: &secretByValue, location: `'hsec_sk_live_leak'`}, envSecret},
		{"double quotes and a newline", secretConfig{backend: &secretByValue, location: "\"hsec_sk_live_leak\"\n"}, envSecret},
		{"in a file", fileConfig(file), envSecretFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.secret = tt.secret
			_, err := newHandler(context.Background(), cfg, dependencies{logs: &lockedBuffer{}})
			var ce *configError
			if !errors.As(err, &ce) || ce.variable != tt.variable || !strings.Contains(err.Error(), "quoted") || !strings.Contains(ce.fix, "remove the quotes") {
				t.Fatalf("got %v, want a configuration error naming %s that says the value is quoted", err, tt.variable)
			}
			if strings.Contains(err.Error(), "sk_live") {
				t.Errorf("error %q contains the value", err)
			}
		})
	}
}

func TestSecretValueConfigurationErrors(t *testing.T) {
	for _, value := range []string{"sk_live_abc", "hsec_", " hsec_ ", "HSEC_abc"} {
		cfg := testConfig()
		cfg.secret = secretConfig{backend: &secretByValue, location: value}
		_, err := newHandler(context.Background(), cfg, dependencies{logs: &lockedBuffer{}})
		var ce *configError
		if !errors.As(err, &ce) || ce.variable != envSecret {
			t.Errorf("value %q: got %v, want a configuration error naming %s", value, err, envSecret)
		}
		if err != nil && strings.Contains(err.Error(), "sk_live") {
			t.Errorf("error %q contains the value", err)
		}
	}
}
