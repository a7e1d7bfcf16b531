package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proficient-hmac/proficient-hmac/internal/standin"
)

// runner is the local runner, built once for these tests; googleEnv points it at a stand-in for
// Google's endpoints, so a start that fetches keys logs nothing but what a test looks for.
var runner string
var googleEnv []string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "proficient-hmac-cmd")
	if err != nil {
		panic(err)
	}
	runner = filepath.Join(dir, "proficient-hmac")
	if out, err := exec.Command("go", "build", "-o", runner, ".").CombinedOutput(); err != nil {
		panic("go build: " + err.Error() + "\n" + string(out))
	}
	google, err := standin.Start("demo-x")
	if err != nil {
		panic(err)
	}
	if googleEnv, err = google.Env(); err != nil {
		panic(err)
	}
	code := m.Run()
	google.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestConfigurationErrorsStopTheRunner: a bad configuration exits non-zero before serving, with
// one plain line locally and one CRITICAL JSON line on Cloud Run.
func TestConfigurationErrorsStopTheRunner(t *testing.T) {
	tests := []struct {
		name     string
		env      []string
		variable string
		says     string // part of the fix the line must give, if any
	}{
		{"no project", []string{"PROFICIENT_HMAC_SECRET=hsec_x"}, "GOOGLE_CLOUD_PROJECT", ""},
		{"no secret", []string{"GOOGLE_CLOUD_PROJECT=demo-x"}, "PROFICIENT_HMAC_SECRET", ""},
		{"secret without hsec_", []string{"GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET=sk_live_leak"}, "PROFICIENT_HMAC_SECRET", ""},
		{"secret file missing", []string{"GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET_FILE=/nonexistent/hmac"}, "PROFICIENT_HMAC_SECRET_FILE", "check the path"},
		{"secret that is only the prefix", []string{"GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET=hsec_"}, "PROFICIENT_HMAC_SECRET", "only the prefix hsec_"},
		{"emulator host with a scheme", []string{"GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET=hsec_x", "FIREBASE_AUTH_EMULATOR_HOST=http://127.0.0.1:9099"}, "FIREBASE_AUTH_EMULATOR_HOST", "no scheme"},
		// GCE_METADATA_HOST: the start's probe for a metadata server goes to loopback, not to DNS.
		{"emulator that does not answer", []string{"GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET=hsec_x", "FIREBASE_AUTH_EMULATOR_HOST=" + closedAddr(t), "GCE_METADATA_HOST=" + closedAddr(t)}, "FIREBASE_AUTH_EMULATOR_HOST", "nothing answers"},
		{"emulator with HOST=0.0.0.0", []string{"GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET=hsec_x", "FIREBASE_AUTH_EMULATOR_HOST=127.0.0.1:9099", "HOST=0.0.0.0"}, "HOST", "loopback"},
		{"emulator with a project not named demo-", []string{"GOOGLE_CLOUD_PROJECT=my-prod-app", "PROFICIENT_HMAC_SECRET=hsec_x", "FIREBASE_AUTH_EMULATOR_HOST=127.0.0.1:9099"}, "GOOGLE_CLOUD_PROJECT", "demo-"},
		{"emulator with the secret from a file", []string{"GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET_FILE=/secrets/hmac", "FIREBASE_AUTH_EMULATOR_HOST=127.0.0.1:9099"}, "PROFICIENT_HMAC_SECRET_FILE", "by value"},
		{"projects that disagree", []string{"GOOGLE_CLOUD_PROJECT=demo-x", "GCLOUD_PROJECT=demo-y", "PROFICIENT_HMAC_SECRET=hsec_x"}, "GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT"},
		{"the secret in the file variable", []string{"GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET_FILE=hsec_sk_live_leak"}, "PROFICIENT_HMAC_SECRET_FILE", ""},
		{"the secret in the version variable", []string{"GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET_VERSION=hsec_sk_live_leak"}, "PROFICIENT_HMAC_SECRET_VERSION", ""},
		{"the secret in the refresh variable", []string{"GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET=hsec_x", "PROFICIENT_HMAC_SECRET_REFRESH=hsec_sk_live_leak"}, "PROFICIENT_HMAC_SECRET_REFRESH", "starting with hsec_"},
		{"secret with its quotes", []string{"GOOGLE_CLOUD_PROJECT=demo-x", `PROFICIENT_HMAC_SECRET="hsec_sk_live_leak"`}, "PROFICIENT_HMAC_SECRET", "quoted"},
		{"bad CORS origin", []string{"GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET=hsec_x", "CORS_ALLOWED_ORIGINS=https://a.example/"}, "CORS_ALLOWED_ORIGINS", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, err := run(t, tt.env...)
			line := strings.TrimSuffix(stderr, "\n")
			if !exitedWith(err, 1) || strings.Contains(line, "\n") || !strings.HasPrefix(line, "proficient-hmac: "+tt.variable+" ") {
				t.Errorf("got %v, stderr %q; want exit 1 and one line naming %s", err, stderr, tt.variable)
			}
			if !strings.Contains(line, tt.says) {
				t.Errorf("stderr %q: want it to say %q", stderr, tt.says)
			}
			if stdout != "" || strings.Contains(stderr, "sk_live_leak") {
				t.Errorf("stdout %q, stderr %q: want nothing on stdout and no secret anywhere", stdout, stderr)
			}
		})
	}
	t.Run("on Cloud Run", func(t *testing.T) {
		_, stderr, err := run(t, "K_SERVICE=proficient-hmac", "GOOGLE_CLOUD_PROJECT=demo-x",
			"PROFICIENT_HMAC_SECRET=hsec_x", "FIREBASE_AUTH_EMULATOR_HOST=127.0.0.1:9099")
		var entry map[string]any
		if jsonErr := json.Unmarshal([]byte(stderr), &entry); !exitedWith(err, 1) || jsonErr != nil {
			t.Fatalf("got %v, stderr %q; want exit 1 and one JSON log line", err, stderr)
		}
		if msg, _ := entry["message"].(string); entry["severity"] != "CRITICAL" || !strings.Contains(msg, "FIREBASE_AUTH_EMULATOR_HOST") {
			t.Errorf("got %v, want a CRITICAL entry naming FIREBASE_AUTH_EMULATOR_HOST", entry)
		}
	})
}

// run starts the runner with only env (and PATH and googleEnv), so the caller's environment
// cannot leak in.
func run(t *testing.T, env ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // a runner that starts serving is a failure, not a hang
	defer cancel()
	cmd := exec.CommandContext(ctx, runner)
	cmd.Env = append(append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "PORT=1"}, googleEnv...), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

func exitedWith(err error, code int) bool {
	var exit *exec.ExitError
	return errors.As(err, &exit) && exit.ExitCode() == code
}

// TestRunnerClosesSlowAndIdleConnections: the local runner does not keep a connection open for
// ever that sends nothing, trickles a body, or stays idle after its answer. Each connection
// here would stay open until the test's own 30 s deadline on a server without timeouts.
func TestRunnerClosesSlowAndIdleConnections(t *testing.T) {
	addr := startRunner(t, "GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET=hsec_x")
	tests := []struct {
		name, send string
		want       string // what the server answers before it closes, if anything
	}{
		{"nothing sent", "", ""},
		{"headers never finished", "POST / HTTP/1.1\r\nHost: x\r\n", ""},
		{"body trickled", "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"da",
			"The request body could not be read."},
		{"idle after an answer", "OPTIONS / HTTP/1.1\r\nHost: x\r\nOrigin: https://a.example\r\n\r\n", "204 No Content"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(30 * time.Second))
			if _, err := io.WriteString(conn, tt.send); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(conn) // until the server closes the connection
			if err != nil {
				t.Fatalf("got %v after %q; want the server to close the connection", err, got)
			}
			if tt.want == "" && len(got) != 0 || !strings.Contains(string(got), tt.want) {
				t.Errorf("answer %q, want %q", got, tt.want)
			}
		})
	}
}

// TestRunnerSettings: a PORT that is not a port stops the runner with a line naming it.
func TestRunnerSettings(t *testing.T) {
	_, stderr, err := run(t, "GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET=hsec_x", "PORT=abc")
	if !exitedWith(err, 1) || !strings.HasPrefix(stderr, "proficient-hmac: PORT is \"abc\"") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("got %v, stderr %q; want exit 1 and one line naming PORT", err, stderr)
	}
}

// closedAddr is a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startRunner starts the runner on a free port with env and returns its address once it says
// it is serving.
func startRunner(t *testing.T, env ...string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(runner)
	cmd.Env = append(append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "PORT=" + port}, googleEnv...), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	lines := bufio.NewScanner(stderr)
	for lines.Scan() {
		if strings.HasPrefix(lines.Text(), "proficient-hmac: serving ") {
			go io.Copy(io.Discard, stderr)
			return addr
		}
	}
	t.Fatalf("the runner exited without serving")
	return ""
}

// TestRunnerAnswersEveryRequestItself: locally, requests a ServeMux would answer on its own (an
// unclean path's redirect, CONNECT's plain 404) reach the function and carry its headers.
func TestRunnerAnswersEveryRequestItself(t *testing.T) {
	addr := startRunner(t, "GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET=hsec_x")
	for _, request := range []string{
		"POST //api/proficient-hmac HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\nConnection: close\r\n\r\n",
	} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		io.WriteString(conn, request)
		got, _ := io.ReadAll(conn)
		conn.Close()
		if !strings.Contains(string(got), "Cache-Control: no-store") || !strings.Contains(string(got), `{"error":{"status":`) {
			t.Errorf("%q: got %q, want the function's own answer", strings.SplitN(request, "\r\n", 2)[0], got)
		}
	}
}
