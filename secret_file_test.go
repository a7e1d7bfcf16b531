package proficienthmac

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSecretFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hmac-secret")
	writeSecretFile(t, path, "  "+testSecret+"\r\n")
	cfg := testConfig()
	cfg.secret = fileConfig(path)
	h, _ := newTestHandler(t, cfg, dependencies{})
	clock := withClock(h)

	// Written before the start, it is taken at once, trimmed.
	if got, _ := hmacFor(t, h); got != testUIDHMAC {
		t.Fatalf("trimmed value: got %q, want %q", got, testUIDHMAC)
	}

	// Rotation replaces the file, as a secret volume mount does; the new content is taken once
	// it has stood unchanged for settleTime.
	rotated := "hsec_rotated_value"
	rotateSecretFile(t, path, rotated+"\n")
	for _, after := range []time.Duration{time.Second, settleTime - 2*time.Second} {
		refreshNow(t, h, clock, after)
		if got, _ := hmacFor(t, h); got != testUIDHMAC {
			t.Errorf("%s into the rotation: got %q, want the settled HMAC %q", after, got, testUIDHMAC)
		}
	}
	refreshNow(t, h, clock, 2*time.Second)
	if got, _ := hmacFor(t, h); got != newHMACKey([]byte(rotated)).sign(testUID) {
		t.Errorf("after rotation: got %q, want the HMAC under the rotated value", got)
	}

	// A file that goes missing or bad keeps the last good value.
	os.Remove(path)
	refreshNow(t, h, clock, 2*time.Second)
	if got, _ := hmacFor(t, h); got != newHMACKey([]byte(rotated)).sign(testUID) {
		t.Errorf("after removal: got %q, want the last good HMAC", got)
	}
}

// TestSecretFileTornWrite: a writer rewrites the file in place (truncates it, writes part, pauses
// 3 s, writes the rest), and every read of the pause finds the half-written value, which starts
// with hsec_; it is never used, and the whole value is taken once it has stood for settleTime.
func TestSecretFileTornWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hmac-secret")
	writeSecretFile(t, path, testSecret)
	cfg := testConfig()
	cfg.secret = fileConfig(path)
	h, _ := newTestHandler(t, cfg, dependencies{})
	clock := withClock(h)

	full := "hsec_rotated_in_place_0123456789"
	torn := full[:len("hsec_rot")]
	writeInPlace(t, path, torn, clock.Now())
	for range 3 { // the writer's pause, a read a second
		refreshNow(t, h, clock, time.Second)
		if got, _ := hmacFor(t, h); got != testUIDHMAC {
			t.Fatalf("while the file is half-written: got %q, want the settled HMAC %q", got, testUIDHMAC)
		}
	}
	appendInPlace(t, path, full[len(torn):], clock.Now()) // the writer finishes
	checkSettles(t, h, clock, testUIDHMAC, newHMACKey([]byte(full)).sign(testUID), newHMACKey([]byte(torn)).sign(testUID))
}

// TestSecretFileTornAtStart: the instance starts while a writer that rewrites the file in place
// pauses half-way for 2 s. Nothing is served under the half-written value: 503 until the whole
// value has stood for settleTime, then its HMAC.
func TestSecretFileTornAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hmac-secret")
	full := "hsec_rotated_in_place_0123456789"
	torn := full[:len("hsec_r")]
	writeInPlace(t, path, torn, time.Now())
	cfg := testConfig()
	cfg.secret = fileConfig(path)
	h, logs := newTestHandler(t, cfg, dependencies{})
	clock := withClock(h)
	if got, code := hmacFor(t, h); code != http.StatusServiceUnavailable {
		t.Fatalf("at start: got %d %q, want 503", code, got)
	}
	if !strings.Contains(logs.String(), "it is taken once it has stood unchanged for 5s") {
		t.Errorf("log %q: want a WARNING saying the file is taken once it has stood unchanged", logs.String())
	}
	for range 2 { // the writer's pause
		refreshNow(t, h, clock, time.Second)
		if got, code := hmacFor(t, h); code != http.StatusServiceUnavailable {
			t.Fatalf("while the file is half-written: got %d %q, want 503", code, got)
		}
	}
	appendInPlace(t, path, full[len(torn):], clock.Now())
	checkSettles(t, h, clock, "", newHMACKey([]byte(full)).sign(testUID), newHMACKey([]byte(torn)).sign(testUID))
}

// checkSettles reads the file each second for settleTime: the HMAC is before ("" for none)
// until the last read, then after, and never torn.
func checkSettles(t *testing.T, h *handler, clock *fakeClock, before, after, torn string) {
	t.Helper()
	seconds := int(settleTime / time.Second)
	for i := range seconds {
		refreshNow(t, h, clock, time.Second)
		got, _ := hmacFor(t, h)
		want := before
		if i == seconds-1 {
			want = after
		}
		if got == torn || got != want {
			t.Fatalf("%d s after the write ended: got %q, want %q (the half-written value's is %q)", i+1, got, want, torn)
		}
	}
}

// fileConfig is PROFICIENT_HMAC_SECRET_FILE=path, as loadConfig reads it.
func fileConfig(path string) secretConfig {
	return secretConfig{backend: &secretInFile, location: path, refresh: time.Second}
}

// writeSecretFile writes path as it stands when an instance starts: replaced atomically, last
// modified an hour before.
func writeSecretFile(t *testing.T, path, content string) {
	t.Helper()
	rotateSecretFile(t, path, content)
	hourAgo := time.Now().Add(-time.Hour)
	if err := os.Chtimes(path, hourAgo, hourAgo); err != nil {
		t.Fatal(err)
	}
}

// rotateSecretFile replaces path atomically now, as a rotation does.
func rotateSecretFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// writeInPlace truncates path and writes part of a value, as an in-place writer does before a
// pause; its modification time is set to at (the test's clock).
func writeInPlace(t *testing.T, path, part string, at time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(part), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
}

// appendInPlace writes the rest, as that writer does after its pause.
func appendInPlace(t *testing.T, path, rest string, at time.Time) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(rest); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
}

func TestSecretFileConfigurationErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	writeSecretFile(t, bad, "sk_not_proficient\n")
	for name, path := range map[string]string{"missing file": filepath.Join(dir, "missing"), "not hsec_": bad, "a directory": dir} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig()
			cfg.secret = fileConfig(path)
			_, err := newHandler(context.Background(), cfg, dependencies{logs: &lockedBuffer{}})
			var ce *configError
			if !errors.As(err, &ce) || ce.variable != envSecretFile {
				t.Fatalf("got %v, want a configuration error naming %s", err, envSecretFile)
			}
		})
	}
}
