package proficienthmac

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests' stand-in for Google: the real Admin SDK fetches signing keys from
// www.googleapis.com and looks users up at identitytoolkit.googleapis.com. TestMain routes both
// hosts, through http.DefaultTransport, to this local TLS server. Any other non-loopback address
// is refused, so the suite cannot reach the network.
var google *googleStandIn

const testProject = "demo-proficient"

func TestMain(m *testing.M) {
	google = startGoogleStandIn()
	code := m.Run()
	google.server.Close()
	os.Exit(code)
}

type googleStandIn struct {
	server     *httptest.Server
	signingKey *rsa.PrivateKey // its certificate is served as kid "key-1"
	otherKey   *rsa.PrivateKey // never served

	mu         sync.Mutex
	keysDown   bool                // the key endpoint answers 503
	lookupDown bool                // the identity toolkit answers 503
	users      map[string]fakeUser // what accounts:lookup knows
}

type fakeUser struct {
	disabled   bool
	validSince int64 // tokens issued before this Unix second are revoked
}

const testKID = "key-1"

func startGoogleStandIn() *googleStandIn {
	g := &googleStandIn{signingKey: mustRSAKey(), otherKey: mustRSAKey(), users: map[string]fakeUser{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com", g.serveKeys)
	mux.HandleFunc("POST identitytoolkit.googleapis.com/", g.serveLookup)
	g.server = httptest.NewUnstartedServer(mux)
	cert, pool := mustTLSCert("www.googleapis.com", "identitytoolkit.googleapis.com", "*.googleapis.com")
	g.server.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	g.server.StartTLS()

	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{RootCAs: pool}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	standIn := g.server.Listener.Addr().String()
	transport.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, _ := net.SplitHostPort(addr)
		switch ip := net.ParseIP(host); {
		case strings.HasSuffix(host, ".googleapis.com") && port == "443":
			return dialer.DialContext(ctx, network, standIn)
		case host == "localhost" || (ip != nil && ip.IsLoopback()):
			return dialer.DialContext(ctx, network, addr)
		}
		return nil, fmt.Errorf("test: no network beyond loopback (dial %s)", addr)
	}
	http.DefaultTransport = transport
	return g
}

func (g *googleStandIn) set(f func(g *googleStandIn)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f(g)
}

// reset puts the stand-in back as a test found it.
func (g *googleStandIn) reset(t *testing.T) {
	t.Cleanup(func() {
		g.set(func(g *googleStandIn) { g.keysDown, g.lookupDown, g.users = false, false, map[string]fakeUser{} })
	})
}

func (g *googleStandIn) serveKeys(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	down := g.keysDown
	g.mu.Unlock()
	if down {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=3600")
	json.NewEncoder(w).Encode(map[string]string{testKID: mustCertPEM(g.signingKey)})
}

// serveLookup answers accounts:lookup, for the project or a tenant, as the identity toolkit does.
func (g *googleStandIn) serveLookup(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.lookupDown || !strings.HasSuffix(r.URL.Path, "/accounts:lookup") {
		http.Error(w, `{"error":{"code":503,"message":"UNAVAILABLE","status":"UNAVAILABLE"}}`, http.StatusServiceUnavailable)
		return
	}
	var query struct{ LocalID []string }
	json.NewDecoder(r.Body).Decode(&query)
	var users []map[string]any
	for _, uid := range query.LocalID {
		if u, ok := g.users[uid]; ok {
			users = append(users, map[string]any{
				"localId": uid, "disabled": u.disabled, "validSince": fmt.Sprint(u.validSince),
			})
		}
	}
	json.NewEncoder(w).Encode(map[string]any{"users": users})
}

// idToken signs claims as Firebase Auth would: RS256 with the stand-in's served key.
func idToken(t testing.TB, claims map[string]any) string {
	return signJWT(t, google.signingKey, map[string]any{"alg": "RS256", "kid": testKID, "typ": "JWT"}, claims)
}

// claimsFor are the claims of a fresh Firebase ID token for uid, with changes applied.
func claimsFor(uid string, changes map[string]any) map[string]any {
	now := time.Now().Unix()
	claims := map[string]any{
		"iss":       "https://securetoken.google.com/" + testProject,
		"aud":       testProject,
		"sub":       uid,
		"user_id":   uid,
		"auth_time": now,
		"iat":       now,
		"exp":       now + 3600,
		"firebase":  map[string]any{"sign_in_provider": "password", "identities": map[string]any{}},
	}
	for k, v := range changes {
		if v == nil {
			delete(claims, k)
		} else {
			claims[k] = v
		}
	}
	return claims
}

func signJWT(t testing.TB, key *rsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signed := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	if key == nil {
		return signed + "."
	}
	digest := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func mustRSAKey() *rsa.PrivateKey {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return key
}

// mustCertPEM wraps the key's public half in a self-signed certificate, the form Google serves.
func mustCertPEM(key *rsa.PrivateKey) string {
	template := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// mustTLSCert makes a self-signed serving certificate for names, and a pool that trusts it.
func mustTLSCert(names ...string) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(2), DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}
