package proficienthmac

import (
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"os"
	"testing"

	"github.com/proficient-hmac/proficient-hmac/internal/standin"
)

// google stands in for Google's endpoints. The real Admin SDK fetches signing keys from
// www.googleapis.com and looks users up at identitytoolkit.googleapis.com through
// http.DefaultTransport, which TestMain routes to the stand-in; any other non-loopback address
// is refused, so the suite cannot reach the network.
var (
	google   *standin.Google
	otherKey *rsa.PrivateKey // never served
)

const testProject = "demo-proficient"

func TestMain(m *testing.M) {
	var err error
	if google, err = standin.Start(testProject); err != nil {
		panic(err)
	}
	if otherKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	http.DefaultTransport = google.Transport()
	code := m.Run()
	google.Close()
	os.Exit(code)
}

// resetGoogle puts the stand-in back as the test found it when the test ends.
func resetGoogle(t *testing.T) { t.Cleanup(resetGoogleNow) }

// resetGoogleNow puts the stand-in back as a test finds it.
func resetGoogleNow() {
	google.Set(func(g *standin.Google) {
		g.KeysStatus, g.KeysDelay, g.KeysMaxAge, g.KeysUnreachable = 0, 0, 0, false
		g.LookupDown, g.LookupQuota, g.LookupDelay, g.Users = false, false, 0, map[string]standin.User{}
		g.Secret, g.SecretFail, g.SecretDelay, g.BadCRC = "", 0, 0, false
		g.ConsumeDown, g.ConsumeDelay, g.JWKSDown, g.JWKSDelay = false, 0, false, 0
		g.LookupStatus, g.ConsumeStatus = 0, 0
	})
}

// idToken signs claims as Firebase Auth would: RS256 with the stand-in's served key.
func idToken(t testing.TB, claims map[string]any) string { return google.IDToken(claims) }

// claimsFor are the claims of a fresh Firebase ID token for uid, with changes applied.
func claimsFor(uid string, changes map[string]any) map[string]any { return google.Claims(uid, changes) }
