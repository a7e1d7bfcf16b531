// Package deploy checks what `gcloud functions deploy` uploads and that it builds and serves as
// Cloud Run's Go buildpack would run it.
package deploy

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/proficient-hmac/proficient-hmac/internal/standin"
)

// root is the repository's root, where .gcloudignore is.
const root = ".."

// needGcloud skips a test that runs the real gcloud where gcloud is not installed, and says so.
// CI has gcloud: there (CI set) its absence fails the test instead of skipping it.
func needGcloud(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("gcloud"); err == nil {
		return
	}
	const missing = "gcloud (the Google Cloud CLI) is not on PATH, and this test runs it offline"
	if os.Getenv("CI") != "" {
		t.Fatal(missing + "; CI must have it")
	}
	t.Skip("skipped: " + missing + "; install the Google Cloud CLI to run it (CI does)")
}

// uploadList is what gcloud would upload, under .gcloudignore.
func uploadList(t *testing.T) []string {
	t.Helper()
	needGcloud(t)
	cmd := exec.Command("gcloud", "meta", "list-files-for-upload")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CLOUDSDK_CORE_DISABLE_PROMPTS=1", "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING=true",
		"CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK=true", "CLOUDSDK_CONFIG="+t.TempDir())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gcloud meta list-files-for-upload: %v (gcloud is needed to deploy, and so to test the deploy)", err)
	}
	return slices.Sorted(slices.Values(strings.Fields(string(out))))
}

// TestUploadIsWhatTheBuildNeeds: go.mod, go.sum and the root package's non-test Go files.
func TestUploadIsWhatTheBuildNeeds(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .GoFiles "\n"}}`, root).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Sorted(slices.Values(append(strings.Fields(string(out)), "go.mod", "go.sum")))
	if got := uploadList(t); !slices.Equal(got, want) {
		t.Errorf("upload: got %q, want %q", got, want)
	}
}

// TestBuildpackStyleBuildServes builds the uploaded files alone with a generated main, runs it
// with the environment Cloud Run gives it, and asks it for an HMAC.
func TestBuildpackStyleBuildServes(t *testing.T) {
	src := t.TempDir()
	for _, name := range uploadList(t) {
		data, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	app := filepath.Join(src, "serverless_function_app")
	os.Mkdir(app, 0o755)
	// The main the Go buildpack generates for a function, kept in bench/function for make bench.
	buildpackMain, err := os.ReadFile(filepath.Join(root, "bench", "function", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(app, "main.go"), buildpackMain, 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "function")
	build := exec.Command("go", "build", "-mod=readonly", "-o", bin, "./serverless_function_app")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build from the uploaded files: %v\n%s", err, out)
	}

	google, err := standin.Start("demo-deploy")
	if err != nil {
		t.Fatal(err)
	}
	defer google.Close()
	env, err := google.Env()
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	cmd := exec.Command(bin)
	cmd.Env = append(env, "PATH="+os.Getenv("PATH"), "PORT="+port, "K_SERVICE=proficient-hmac", "K_REVISION=proficient-hmac-00001",
		"FUNCTION_TARGET=ProficientHMAC", "GOOGLE_CLOUD_PROJECT=demo-deploy", "PROFICIENT_HMAC_SECRET=hsec_deploy_check")
	// As on Cloud Run: stdout and stderr are pipes that something drains.
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out, logs strings.Builder
	var drained sync.WaitGroup
	drained.Go(func() { io.Copy(&out, stdout) })
	drained.Go(func() { io.Copy(&logs, stderr) })
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	token := google.IDToken(google.Claims("deploy-user", nil))
	var status int
	for tries := 0; tries < 200 && status != http.StatusOK; tries++ { // until it listens, at most 20 s
		req, _ := http.NewRequest("POST", "http://127.0.0.1:"+port+"/", strings.NewReader(`{"data":null}`))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			status = resp.StatusCode
			resp.Body.Close()
		} else {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if status != http.StatusOK {
		t.Fatalf("the buildpack-style build did not serve a 200 (last status %d)", status)
	}
	const more = 20
	for range more {
		resp, err := http.Post("http://127.0.0.1:"+port+"/", "application/json", strings.NewReader(`{"data":null}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// SIGTERM, as Cloud Run stops an instance: the function writes out its logs and exits.
	cmd.Process.Signal(syscall.SIGTERM)
	drained.Wait()
	cmd.Wait()

	// The output is only the function's JSON lines: one a request, none of the Functions
	// Framework's empty lines (functions-framework-go issue #8).
	if out.String() != "" {
		t.Errorf("stdout: got %q, want nothing", out.String())
	}
	requests := 0
	for line := range strings.Lines(logs.String()) {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Errorf("stderr line %q is not a JSON log entry", line)
		} else if entry["message"] == "request" {
			requests++
		}
	}
	if requests != 1+more {
		t.Errorf("request lines: got %d, want %d; stderr:\n%s", requests, 1+more, logs.String())
	}
	if refused := google.Refused(); len(refused) > 0 {
		t.Errorf("it tried to reach %q", refused)
	}
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}
