package proficienthmac

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proficient-hmac/proficient-hmac/internal/standin"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
)

// What the package's tests share: the stand-in for Google's endpoints (TestMain routes the
// real clients to it), handlers built as the function builds them at start, requests, and what
// every answer must be.

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
func resetGoogle(t *testing.T) { t.Cleanup(google.Reset) }

// idToken signs claims as Firebase Auth would: RS256 with the stand-in's served key.
func idToken(t testing.TB, claims map[string]any) string { return google.IDToken(claims) }

// claimsFor are the claims of a fresh Firebase ID token for uid, with changes applied.
func claimsFor(uid string, changes map[string]any) map[string]any { return google.Claims(uid, changes) }

// noMetadataServer points the start's metadata probe at a loopback server that is not Google's,
// so that no test looks metadata.google.internal up.
func noMetadataServer(t *testing.T) {
	t.Helper()
	notGoogle := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(notGoogle.Close)
	t.Setenv("GCE_METADATA_HOST", strings.TrimPrefix(notGoogle.URL, "http://"))
}

const (
	testSecret = "hsec_3xampleSecretForTests_9f2c"
	testUID    = "gtLIK8ELsHTr0Fajg28Ud9eFpJJ3"
	// testUIDHMAC = base64(HMAC-SHA256(testSecret, testUID)), computed with openssl and Node.
	testUIDHMAC = "PmtPnbeCUxwHpKTkdipsZNSt+ZsKrGui6ai4No2Z7VE="
	testOrigin  = "https://app.example.com"
)

// testConfig is the default configuration with a secret in the environment.
func testConfig() config {
	return config{projectID: testProject, secret: secretConfig{backend: &secretByValue, location: testSecret}, auth: authPolicy{allowAnonymous: true}}
}

func withAppCheck(enforce, replayProtection bool) config {
	cfg := testConfig()
	cfg.appCheck = appCheckConfig{enforce: enforce, replayProtection: replayProtection}
	return cfg
}

// newTestHandler builds a handler as the function does at start, with the real Admin SDK talking
// to the Google stand-in. Its logs go to the returned buffer.
func newTestHandler(t *testing.T, cfg config, deps dependencies) (*handler, *lockedBuffer) {
	t.Helper()
	resetGoogle(t)
	logs := &lockedBuffer{}
	deps.logs = logs
	h, err := newHandler(context.Background(), cfg, deps)
	if err != nil {
		t.Fatalf("newHandler: %v", err)
	}
	t.Cleanup(func() {
		h.stop()
		waitForRead(h)
	})
	return h, logs
}

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logLines parses every line of the output as a JSON object.
func logLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		lines = append(lines, m)
	}
	return lines
}

// call sends one request through the handler. headers alternate name, value.
func call(h http.Handler, method, body string, headers ...string) *httptest.ResponseRecorder {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, "/api/proficient-hmac", r)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

type answer struct {
	HMAC           string `json:"hmac"`
	UserExternalID string `json:"userExternalId"`
	Result         *struct {
		HMAC           string `json:"hmac"`
		UserExternalID string `json:"userExternalId"`
	} `json:"result"`
	Error *struct {
		Status  string `json:"status"`
		Message string `json:"message"`
	} `json:"error"`
}

// decode reads an answer, failing the test on anything but the spec's JSON shapes.
func decode(t *testing.T, w *httptest.ResponseRecorder) answer {
	t.Helper()
	var a answer
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		t.Fatalf("body %q is not the spec's JSON: %v", w.Body.String(), err)
	}
	shapes := 0
	for _, present := range []bool{a.HMAC != "", a.Result != nil, a.Error != nil} {
		if present {
			shapes++
		}
	}
	if shapes != 1 {
		t.Fatalf("body %q: want exactly one of hmac, result, error", w.Body.String())
	}
	return a
}

// checkCommonHeaders asserts what every answer carries; withCORS for an allowed Origin.
func checkCommonHeaders(t *testing.T, w *httptest.ResponseRecorder, withCORS bool) {
	t.Helper()
	want := map[string]string{
		"Content-Type":           "application/json; charset=utf-8",
		"Cache-Control":          "no-store",
		"X-Content-Type-Options": "nosniff",
		"Vary":                   "Origin",
	}
	if withCORS {
		want["Access-Control-Allow-Origin"] = testOrigin
		want["Access-Control-Expose-Headers"] = "Retry-After"
	}
	for name, value := range want {
		if got := w.Header().Get(name); got != value {
			t.Errorf("%s: got %q, want %q", name, got, value)
		}
	}
	if !withCORS {
		for _, name := range []string{"Access-Control-Allow-Origin", "Access-Control-Expose-Headers", "Access-Control-Allow-Methods"} {
			if got := w.Header().Get(name); got != "" {
				t.Errorf("%s: got %q, want none", name, got)
			}
		}
	}
}

// checkHMAC asserts a 200 answer in the protocol p for uid.
func checkHMAC(t *testing.T, a answer, p protocol, uid, wantHMAC string) {
	t.Helper()
	got := hmacResult{a.HMAC, a.UserExternalID}
	if p == protocolCallable {
		if a.Result == nil {
			t.Fatalf("callable answer without result: %+v", a)
		}
		got = hmacResult{a.Result.HMAC, a.Result.UserExternalID}
	} else if a.Result != nil {
		t.Fatalf("REST answer with result: %+v", a)
	}
	if want := (hmacResult{wantHMAC, uid}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// checkServed asserts a 200 answer in the protocol p carrying uid's HMAC, wantHMAC.
func checkServed(t *testing.T, w *httptest.ResponseRecorder, p protocol, uid, wantHMAC string) {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("status: got %d, want 200 (%.200s)", w.Code, w.Body.String())
	}
	checkHMAC(t, decode(t, w), p, uid, wantHMAC)
}

// checkRefused asserts a refusal: the HTTP status, the error shape with the canonical status
// (decode allows only one of error, hmac and result, so no HMAC field), and no HMAC of testUID
// anywhere in the body.
func checkRefused(t *testing.T, w *httptest.ResponseRecorder, code int, status string) answer {
	t.Helper()
	if w.Code != code {
		t.Fatalf("status: got %d, want %d (%.200s)", w.Code, code, w.Body.String())
	}
	a := decode(t, w)
	if a.Error == nil || a.Error.Status != status {
		t.Fatalf("got %.200s, want error status %s", w.Body.String(), status)
	}
	if strings.Contains(w.Body.String(), testUIDHMAC) {
		t.Errorf("refusal %s holds an HMAC", w.Body.String())
	}
	return a
}

// hmacFor asks the handler for testUID's HMAC; "" when it did not answer 200, which must then be
// an error without one.
func hmacFor(t *testing.T, h *handler) (string, int) {
	t.Helper()
	w := call(h, "POST", "", "Authorization", "Bearer "+idToken(t, claimsFor(testUID, nil)))
	if w.Code != http.StatusOK {
		if a := decode(t, w); a.Error == nil {
			t.Errorf("%d %s: want an error, and no HMAC", w.Code, w.Body.String())
		}
		return "", w.Code
	}
	return decode(t, w).HMAC, w.Code
}

const testVersion = "projects/" + testProject + "/secrets/proficient-hmac/versions/latest"

// secretManager sets what the stand-in's Secret Manager (gRPC over TLS on loopback) answers,
// and returns the options that point the real secretmanager client at it.
func secretManager(t *testing.T, value string, fail codes.Code) []option.ClientOption {
	resetGoogle(t)
	setSecret(value, fail)
	return []option.ClientOption{
		option.WithEndpoint(google.GRPCAddr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(credentials.NewClientTLSFromCert(google.CAPool, "secretmanager.googleapis.com"))),
	}
}

func setSecret(value string, fail codes.Code) {
	google.Set(func(g *standin.Google) { g.Secret, g.SecretFail = value, fail })
}

func secretManagerConfig() config {
	cfg := testConfig()
	cfg.secret = secretConfig{backend: &secretInSecretManager, location: testVersion, refresh: 5 * time.Minute}
	return cfg
}

// waitForRead waits for the secret read under way, if any, to end.
func waitForRead(h *handler) {
	if done := h.secret.reading.Load(); done != nil {
		<-*done
	}
}

// eventually waits until cond holds, checking it every few milliseconds, for at most limit.
func eventually(t *testing.T, limit time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not so after %s", limit)
		}
	}
}

// productionFiles parses the package's non-test Go files, for tests that check the code itself.
func productionFiles(t *testing.T) (*token.FileSet, []*ast.File) {
	t.Helper()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return fset, files
}
