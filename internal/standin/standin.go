// Package standin serves, on loopback, the Google endpoints proficient-hmac talks to, for tests
// and benchmarks: Firebase's token signing keys (www.googleapis.com), the identity toolkit's
// accounts:lookup, OAuth tokens, and Secret Manager's AccessSecretVersion over gRPC. Real clients
// reach it unmodified: in a test process through Transport (swapped in as
// http.DefaultTransport), and in another process through Env (HTTPS_PROXY to a CONNECT proxy
// that sends *.googleapis.com here, SSL_CERT_FILE trusting its certificate).
package standin

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"hash/crc32"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// KID is the key ID under which the signing key's certificate is served; AppCheckKID, that of
// the App Check key in the JWKS.
const (
	KID         = "standin-key-1"
	AppCheckKID = "standin-app-check-1"
)

// Google is the stand-in. Its exported fields after the first group may be changed at any time
// through Set.
type Google struct {
	Project     string
	SigningKey  *rsa.PrivateKey // Firebase Auth's, served as KID
	AppCheckKey *rsa.PrivateKey // App Check's, served in the JWKS as AppCheckKID
	CAPool      *x509.CertPool  // trusts the stand-in's TLS certificate
	CAPEM       []byte
	HTTPSAddr   string // keys, identity toolkit, OAuth
	GRPCAddr    string // Secret Manager
	ProxyURL    string // an HTTP CONNECT proxy to the two above

	mu          sync.Mutex
	Faults      // what the endpoints answer; change them through Set, put them back with Reset
	consumed    map[string]bool
	secretReads int
	keyFetches  int
	refused     []string

	closers []func()
	tempDir string
}

// Faults are how the stand-in's endpoints answer; the zero value (Users empty) is as Google
// answers when all is well.
type Faults struct {
	KeysStatus      int             // when neither 0 nor 200, the key endpoint answers with this status
	KeysDelay       time.Duration   // the key endpoint answers after this, or when the caller gives up
	KeysMaxAge      time.Duration   // the keys' Cache-Control max-age; 0: an hour
	KeysUnreachable bool            // connections to the key endpoint's host are refused
	LookupDown      bool            // the identity toolkit answers 503
	LookupDelay     time.Duration   // the identity toolkit answers after this, or when the caller gives up
	LookupQuota     bool            // the identity toolkit answers 429 RESOURCE_EXHAUSTED, as over a quota
	Users           map[string]User // what accounts:lookup knows
	Secret          string          // what AccessSecretVersion returns for any name under the project
	SecretFail      codes.Code      // when not OK, AccessSecretVersion fails with it
	SecretDelay     time.Duration
	BadCRC          bool
	ConsumeDown     bool          // verifyAppCheckToken answers 503
	ConsumeDelay    time.Duration // verifyAppCheckToken answers after this, or when the caller gives up
	JWKSDown        bool          // App Check's JWKS answers 503
	JWKSDelay       time.Duration // App Check's JWKS is served after this, or when the caller gives up
	// Refusals Google answers, as HTTP statuses with Google's error body (0: none):
	// accounts:lookup refusing the caller's credentials (401, 403); verifyAppCheckToken refusing
	// a token that is not limited-use (400) or the caller's credentials (401, 403).
	LookupStatus  int
	ConsumeStatus int
}

// Reset puts every fault back as Google answers when all is well.
func (g *Google) Reset() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.Faults = Faults{Users: map[string]User{}}
}

// User is an account as accounts:lookup reports it.
type User struct {
	Disabled   bool
	ValidSince int64 // tokens issued before this Unix second are revoked
}

// Start serves the stand-in for project until Close.
func Start(project string) (*Google, error) {
	signingKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	appCheckKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	cert, pool, caPEM, err := tlsCert("*.googleapis.com", "www.googleapis.com", "identitytoolkit.googleapis.com",
		"oauth2.googleapis.com", "secretmanager.googleapis.com", "firebaseappcheck.googleapis.com")
	if err != nil {
		return nil, err
	}
	g := &Google{Project: project, SigningKey: signingKey, AppCheckKey: appCheckKey, CAPool: pool, CAPEM: caPEM,
		Faults: Faults{Users: map[string]User{}}, consumed: map[string]bool{}}
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}}

	mux := http.NewServeMux()
	mux.HandleFunc("GET www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com", g.serveKeys)
	mux.HandleFunc("POST identitytoolkit.googleapis.com/", g.serveLookup)
	mux.HandleFunc("POST oauth2.googleapis.com/token", serveOAuthToken)
	mux.HandleFunc("GET firebaseappcheck.googleapis.com/v1beta/jwks", g.serveJWKS)
	mux.HandleFunc("POST firebaseappcheck.googleapis.com/v1beta/{project...}", g.serveConsume)
	httpsListener, err := tls.Listen("tcp", "127.0.0.1:0", tlsConfig)
	if err != nil {
		return nil, err
	}
	httpsServer := &http.Server{Handler: mux}
	go httpsServer.Serve(httpsListener)
	g.HTTPSAddr = httpsListener.Addr().String()
	g.closers = append(g.closers, func() { httpsServer.Close() })

	grpcListener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		g.Close()
		return nil, err
	}
	grpcServer := grpc.NewServer(grpc.Creds(credentials.NewTLS(tlsConfig)))
	secretmanagerpb.RegisterSecretManagerServiceServer(grpcServer, &secretManager{g: g})
	go grpcServer.Serve(grpcListener)
	g.GRPCAddr = grpcListener.Addr().String()
	g.closers = append(g.closers, grpcServer.Stop)

	proxyListener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		g.Close()
		return nil, err
	}
	proxy := &http.Server{Handler: http.HandlerFunc(g.serveConnect)}
	go proxy.Serve(proxyListener)
	g.ProxyURL = "http://" + proxyListener.Addr().String()
	g.closers = append(g.closers, func() { proxy.Close() })
	return g, nil
}

// Close stops every server and removes the files Env wrote.
func (g *Google) Close() {
	for _, c := range g.closers {
		c()
	}
	if g.tempDir != "" {
		os.RemoveAll(g.tempDir)
	}
}

// Set changes the stand-in's behaviour under its lock.
func (g *Google) Set(change func(g *Google)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	change(g)
}

// SecretReads and KeyFetches count the requests served; Refused lists the hosts the proxy
// would not carry (anything but *.googleapis.com:443).
func (g *Google) SecretReads() int { g.mu.Lock(); defer g.mu.Unlock(); return g.secretReads }
func (g *Google) KeyFetches() int  { g.mu.Lock(); defer g.mu.Unlock(); return g.keyFetches }
func (g *Google) Refused() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.refused...)
}

// Transport is a clone of http.DefaultTransport that sends *.googleapis.com:443 to the stand-in
// and trusts it; loopback passes; any other address is refused.
func (g *Google) Transport() *http.Transport {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil
	transport.TLSClientConfig = &tls.Config{RootCAs: g.CAPool}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	transport.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		target, err := g.route(addr)
		if err != nil {
			return nil, err
		}
		return dialer.DialContext(ctx, network, target)
	}
	return transport
}

// route is where a connection to addr goes: the stand-in, loopback itself, or nowhere.
func (g *Google) route(addr string) (string, error) {
	host, port, _ := net.SplitHostPort(addr)
	g.mu.Lock()
	unreachable := host == "www.googleapis.com" && g.KeysUnreachable
	if unreachable {
		g.keyFetches++ // a fetch tried, and refused at once
	}
	g.mu.Unlock()
	switch ip := net.ParseIP(host); {
	case unreachable:
		return "", fmt.Errorf("standin: %s unreachable, as configured", addr)
	case host == "secretmanager.googleapis.com" && port == "443":
		return g.GRPCAddr, nil
	case strings.HasSuffix(host, ".googleapis.com") && port == "443":
		return g.HTTPSAddr, nil
	case host == "localhost" || (ip != nil && ip.IsLoopback()):
		return addr, nil
	}
	g.mu.Lock()
	g.refused = append(g.refused, addr)
	g.mu.Unlock()
	return "", fmt.Errorf("standin: no network beyond loopback (dial %s)", addr)
}

// Env is what another process needs to reach the stand-in with unmodified Google clients: the
// proxy, a CA bundle trusting only the stand-in, and service account credentials (its key is
// throwaway; the stand-in accepts any token).
func (g *Google) Env() ([]string, error) {
	if g.tempDir == "" {
		dir, err := os.MkdirTemp("", "standin")
		if err != nil {
			return nil, err
		}
		g.tempDir = dir
		key := x509.MarshalPKCS1PrivateKey(g.SigningKey)
		account, _ := json.Marshal(map[string]string{
			"type": "service_account", "project_id": g.Project, "private_key_id": "standin",
			"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: key})),
			"client_email": "standin@" + g.Project + ".iam.gserviceaccount.com", "client_id": "1",
			"token_uri": "https://oauth2.googleapis.com/token",
		})
		if err := os.WriteFile(filepath.Join(dir, "ca.pem"), g.CAPEM, 0o600); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "service-account.json"), account, 0o600); err != nil {
			return nil, err
		}
	}
	return []string{
		"HTTPS_PROXY=" + g.ProxyURL,
		"NO_PROXY=localhost,127.0.0.1",
		"SSL_CERT_FILE=" + filepath.Join(g.tempDir, "ca.pem"),
		"GOOGLE_APPLICATION_CREDENTIALS=" + filepath.Join(g.tempDir, "service-account.json"),
	}, nil
}

// serveConnect is the CONNECT proxy: *.googleapis.com:443 to the stand-in, nothing else.
func (g *Google) serveConnect(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
		return
	}
	target, err := g.route(r.Host)
	if err != nil || target == r.Host {
		http.Error(w, "standin: refused", http.StatusForbidden)
		return
	}
	upstream, err := net.Dial("tcp", target)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	client, buffered, err := http.NewResponseController(w).Hijack()
	if err != nil {
		upstream.Close()
		return
	}
	client.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n"))
	go func() {
		io.Copy(upstream, buffered)
		upstream.(*net.TCPConn).CloseWrite()
	}()
	io.Copy(client, upstream)
	client.Close()
	upstream.Close()
}

// wait holds an answer for the delay delay reads from g, as a slow or hanging endpoint does. It
// reports false when the caller gave up first.
func (g *Google) wait(r *http.Request, delay func(*Google) time.Duration) bool {
	g.mu.Lock()
	d := delay(g)
	g.mu.Unlock()
	select {
	case <-time.After(d):
		return true
	case <-r.Context().Done():
		return false
	}
}

func (g *Google) serveKeys(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	status, delay, maxAge, unreachable := g.KeysStatus, g.KeysDelay, cmp.Or(g.KeysMaxAge, time.Hour), g.KeysUnreachable
	g.keyFetches++
	g.mu.Unlock()
	if unreachable {
		panic(http.ErrAbortHandler) // a connection kept open from before is dropped
	}
	select { // a slow endpoint, as configured
	case <-time.After(delay):
	case <-r.Context().Done():
		return
	}
	if status != 0 && status != http.StatusOK {
		http.Error(w, "standin: failing as configured", status)
		return
	}
	w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d, must-revalidate, no-transform", int(maxAge.Seconds())))
	json.NewEncoder(w).Encode(map[string]string{KID: certPEM(g.SigningKey)})
}

// serveLookup answers accounts:lookup, for the project or a tenant, as the identity toolkit does.
func (g *Google) serveLookup(w http.ResponseWriter, r *http.Request) {
	if !g.wait(r, func(g *Google) time.Duration { return g.LookupDelay }) {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.LookupQuota {
		http.Error(w, `{"error":{"code":429,"message":"QUOTA_EXCEEDED","status":"RESOURCE_EXHAUSTED"}}`, http.StatusTooManyRequests)
		return
	}
	if g.LookupStatus != 0 {
		googleError(w, g.LookupStatus)
		return
	}
	if g.LookupDown || !strings.HasSuffix(r.URL.Path, "/accounts:lookup") {
		http.Error(w, `{"error":{"code":503,"message":"UNAVAILABLE","status":"UNAVAILABLE"}}`, http.StatusServiceUnavailable)
		return
	}
	var query struct{ LocalID []string }
	json.NewDecoder(r.Body).Decode(&query)
	var users []map[string]any
	for _, uid := range query.LocalID {
		if u, ok := g.Users[uid]; ok {
			users = append(users, map[string]any{"localId": uid, "disabled": u.Disabled, "validSince": fmt.Sprint(u.ValidSince)})
		}
	}
	json.NewEncoder(w).Encode(map[string]any{"users": users})
}

// serveJWKS serves App Check's public key as Google does.
func (g *Google) serveJWKS(w http.ResponseWriter, r *http.Request) {
	if !g.wait(r, func(g *Google) time.Duration { return g.JWKSDelay }) {
		return
	}
	g.mu.Lock()
	down := g.JWKSDown
	g.mu.Unlock()
	if down {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	key := g.AppCheckKey.PublicKey
	json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": AppCheckKID,
		"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
	}}})
}

// serveConsume is verifyAppCheckToken: the first call for a token marks it consumed.
func (g *Google) serveConsume(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	delay := g.ConsumeDelay
	g.mu.Unlock()
	select { // a hanging endpoint, as configured
	case <-time.After(delay):
	case <-r.Context().Done():
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ConsumeStatus != 0 {
		googleError(w, g.ConsumeStatus)
		return
	}
	if g.ConsumeDown || r.PathValue("project") != "projects/"+g.Project+":verifyAppCheckToken" {
		http.Error(w, `{"error":{"code":503,"status":"UNAVAILABLE"}}`, http.StatusServiceUnavailable)
		return
	}
	var body struct {
		AppCheckToken string `json:"appCheckToken"`
	}
	if json.NewDecoder(r.Body).Decode(&body) != nil || body.AppCheckToken == "" {
		http.Error(w, `{"error":{"code":400,"status":"INVALID_ARGUMENT"}}`, http.StatusBadRequest)
		return
	}
	answer := map[string]bool{}
	if g.consumed[body.AppCheckToken] {
		answer["alreadyConsumed"] = true
	}
	g.consumed[body.AppCheckToken] = true
	json.NewEncoder(w).Encode(answer)
}

// googleError answers code with the body Google's JSON APIs send with it.
func googleError(w http.ResponseWriter, code int) {
	status := map[int]string{
		http.StatusBadRequest: "INVALID_ARGUMENT", http.StatusUnauthorized: "UNAUTHENTICATED",
		http.StatusForbidden: "PERMISSION_DENIED", http.StatusTooManyRequests: "RESOURCE_EXHAUSTED",
		http.StatusServiceUnavailable: "UNAVAILABLE",
	}[code]
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"error":{"code":%d,"message":"%s","status":"%s"}}`, code, cmp.Or(status, "UNKNOWN"), cmp.Or(status, "UNKNOWN"))
}

// AppCheckToken signs claims as App Check would; AppCheckClaims are those of a fresh token
// for the project, with changes applied (a nil value removes a claim).
func (g *Google) AppCheckToken(claims map[string]any) string {
	return SignJWT(g.AppCheckKey, map[string]any{"alg": "RS256", "kid": AppCheckKID, "typ": "JWT"}, claims)
}

func (g *Google) AppCheckClaims(changes map[string]any) map[string]any {
	now := time.Now().Unix()
	claims := map[string]any{
		"iss": "https://firebaseappcheck.googleapis.com/123456789", "sub": "1:123456789:web:abcdef",
		"aud": []string{"projects/123456789", "projects/" + g.Project}, "iat": now, "exp": now + 3600,
	}
	return withChanges(claims, changes)
}

func serveOAuthToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"access_token":"standin-access-token","token_type":"Bearer","expires_in":3600}`))
}

type secretManager struct {
	secretmanagerpb.UnimplementedSecretManagerServiceServer
	g *Google
}

func (s *secretManager) AccessSecretVersion(ctx context.Context, req *secretmanagerpb.AccessSecretVersionRequest) (*secretmanagerpb.AccessSecretVersionResponse, error) {
	g := s.g
	g.mu.Lock()
	g.secretReads++
	value, fail, delay, badCRC := g.Secret, g.SecretFail, g.SecretDelay, g.BadCRC
	g.mu.Unlock()
	select {
	case <-time.After(delay): // a slow Secret Manager, as configured
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if !strings.HasPrefix(req.GetName(), "projects/"+g.Project+"/secrets/proficient-hmac/versions/") {
		return nil, status.Errorf(codes.NotFound, "Secret Version [%s] not found.", req.GetName())
	}
	if fail != codes.OK {
		return nil, status.Error(fail, "injected failure")
	}
	sum := int64(crc32.Checksum([]byte(value), crc32.MakeTable(crc32.Castagnoli)))
	if badCRC {
		sum++
	}
	return &secretmanagerpb.AccessSecretVersionResponse{
		Name:    req.GetName(),
		Payload: &secretmanagerpb.SecretPayload{Data: []byte(value), DataCrc32C: &sum},
	}, nil
}

// IDToken signs claims as Firebase Auth would: RS256 with the served key.
func (g *Google) IDToken(claims map[string]any) string {
	return SignJWT(g.SigningKey, map[string]any{"alg": "RS256", "kid": KID, "typ": "JWT"}, claims)
}

// Claims are those of a fresh Firebase ID token of the project for uid, with changes applied
// (a nil value removes a claim).
func (g *Google) Claims(uid string, changes map[string]any) map[string]any {
	now := time.Now().Unix()
	claims := map[string]any{
		"iss": "https://securetoken.google.com/" + g.Project, "aud": g.Project,
		"sub": uid, "user_id": uid, "auth_time": now, "iat": now, "exp": now + 3600,
		"firebase": map[string]any{"sign_in_provider": "password", "identities": map[string]any{}},
	}
	return withChanges(claims, changes)
}

// withChanges applies changes to claims: a nil value removes the claim.
func withChanges(claims, changes map[string]any) map[string]any {
	for k, v := range changes {
		if v == nil {
			delete(claims, k)
		} else {
			claims[k] = v
		}
	}
	return claims
}

// IDTokenFromJSON signs a payload written as JSON text, as Firebase Auth would: for claims a
// map cannot hold (a name given twice, in a chosen order).
func (g *Google) IDTokenFromJSON(payload string) string {
	h, _ := json.Marshal(map[string]any{"alg": "RS256", "kid": KID, "typ": "JWT"})
	return signRaw(g.SigningKey, h, []byte(payload))
}

// SignJWT signs header and claims with key (RS256); a nil key leaves the signature empty.
func SignJWT(key *rsa.PrivateKey, header, claims map[string]any) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return signRaw(key, h, c)
}

func signRaw(key *rsa.PrivateKey, h, c []byte) string {
	signed := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	if key == nil {
		return signed + "."
	}
	digest := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		panic(err) // a 2048-bit key always signs
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// certPEM wraps the key's public half in a self-signed certificate, the form Google serves.
func certPEM(key *rsa.PrivateKey) string {
	template := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// tlsCert makes a self-signed serving certificate for names, a pool that trusts it, and its PEM.
func tlsCert(names ...string) (tls.Certificate, *x509.CertPool, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, nil, err
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "proficient-hmac stand-in"}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool,
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}
