package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runner is the local runner, built once for these tests.
var runner string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "proficient-hmac-cmd")
	if err != nil {
		panic(err)
	}
	runner = filepath.Join(dir, "proficient-hmac")
	if out, err := exec.Command("go", "build", "-o", runner, ".").CombinedOutput(); err != nil {
		panic("go build: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
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
	}{
		{"no project", []string{"PROFICIENT_HMAC_SECRET=hsec_x"}, "GOOGLE_CLOUD_PROJECT"},
		{"no secret", []string{"GOOGLE_CLOUD_PROJECT=demo-x"}, "PROFICIENT_HMAC_SECRET"},
		{"secret without hsec_", []string{"GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET=sk_live_leak"}, "PROFICIENT_HMAC_SECRET"},
		{"secret file missing", []string{"GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET_FILE=/nonexistent/hmac"}, "PROFICIENT_HMAC_SECRET_FILE"},
		{"the secret in the file variable", []string{"GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET_FILE=hsec_sk_live_leak"}, "PROFICIENT_HMAC_SECRET_FILE"},
		{"the secret in the version variable", []string{"GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET_VERSION=hsec_sk_live_leak"}, "PROFICIENT_HMAC_SECRET_VERSION"},
		{"bad CORS origin", []string{"GOOGLE_CLOUD_PROJECT=demo-x", "PROFICIENT_HMAC_SECRET=hsec_x", "CORS_ALLOWED_ORIGINS=https://a.example/"}, "CORS_ALLOWED_ORIGINS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, err := run(t, tt.env...)
			line := strings.TrimSuffix(stderr, "\n")
			if !exitedWith(err, 1) || strings.Contains(line, "\n") || !strings.HasPrefix(line, "proficient-hmac: "+tt.variable+" ") {
				t.Errorf("got %v, stderr %q; want exit 1 and one line naming %s", err, stderr, tt.variable)
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

// run starts the runner with only env (and PATH), so the caller's environment cannot leak in.
func run(t *testing.T, env ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // a runner that starts serving is a failure, not a hang
	defer cancel()
	cmd := exec.CommandContext(ctx, runner)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "PORT=1"}, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

func exitedWith(err error, code int) bool {
	var exit *exec.ExitError
	return errors.As(err, &exit) && exit.ExitCode() == code
}
