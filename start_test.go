package proficienthmac

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/proficient-hmac/proficient-hmac/internal/standin"
	"google.golang.org/grpc/codes"
)

// TestProjectFromMetadata: on Cloud Run without GOOGLE_CLOUD_PROJECT, the metadata server
// (stood in locally) names the project, and tokens for it verify.
func TestProjectFromMetadata(t *testing.T) {
	metadataServer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/computeMetadata/v1/project/project-id" || r.Header.Get("Metadata-Flavor") != "Google" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Metadata-Flavor", "Google")
		w.Write([]byte(testProject))
	}))
	defer metadataServer.Close()
	t.Setenv("GCE_METADATA_HOST", strings.TrimPrefix(metadataServer.URL, "http://"))

	cfg, err := loadConfig(func(name string) string {
		return map[string]string{"K_SERVICE": "proficient-hmac", envSecret: testSecret}[name]
	})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := newTestHandler(t, cfg, dependencies{})
	if h.log.projectID != testProject {
		t.Fatalf("projectID: got %q, want %q", h.log.projectID, testProject)
	}
	if got, code := hmacFor(t, h); got != testUIDHMAC {
		t.Errorf("got %q (%d), want %q", got, code, testUIDHMAC)
	}
}

// TestDrainWaitsForRequestsUnderWay: at SIGTERM the requests being served finish first. One
// waits on a slow first read of the secret; drain returns only once it has been answered.
func TestDrainWaitsForRequestsUnderWay(t *testing.T) {
	sm := secretManager(t, testSecret, codes.OK)
	google.Set(func(g *standin.Google) { g.SecretDelay = 300 * time.Millisecond })
	h, _ := newTestHandler(t, secretManagerConfig(), dependencies{secretOptions: sm, startWait: time.Millisecond})
	w, r := httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil)
	r.Header.Set("Authorization", "Bearer "+idToken(t, claimsFor(testUID, nil)))
	go h.ServeHTTP(w, r)
	for h.inFlight.Load() == 0 { // until the request is under way (the read takes 300 ms)
		runtime.Gosched()
	}
	if !h.drain(10 * time.Second) {
		t.Fatal("drain gave up with a request under way")
	}
	// ServeHTTP answered before its count went down, and drain saw that: the answer is complete.
	if w.Code != http.StatusOK || decode(t, w).HMAC != testUIDHMAC {
		t.Fatalf("the request under way: got %d %q, want its HMAC", w.Code, w.Body.String())
	}
}
