package proficienthmac

import (
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadConfig(t *testing.T) {
	base := map[string]string{"GOOGLE_CLOUD_PROJECT": testProject, envSecret: testSecret}
	with := func(changes map[string]string) map[string]string {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range changes {
			env[k] = v
		}
		return env
	}
	tests := []struct {
		name      string
		env       map[string]string
		wantError string // the variable a configuration error names; "" for success
		check     func(t *testing.T, cfg config)
	}{
		{"defaults", base, "", func(t *testing.T, cfg config) {
			want := config{projectID: testProject, secret: secretConfig{backend: &secretByValue, location: testSecret},
				auth: authPolicy{allowAnonymous: true}, logLevel: slog.LevelInfo}
			if !reflect.DeepEqual(cfg, want) {
				t.Errorf("got %+v, want %+v", cfg, want)
			}
		}},
		{"GCLOUD_PROJECT, as the emulator sets it", map[string]string{"GCLOUD_PROJECT": "demo-x", envSecret: testSecret}, "", func(t *testing.T, cfg config) {
			if cfg.projectID != "demo-x" {
				t.Errorf("projectID: got %q, want demo-x", cfg.projectID)
			}
		}},
		{"no project off Cloud Run", map[string]string{envSecret: testSecret}, "GOOGLE_CLOUD_PROJECT", nil},
		{"no project on Cloud Run: the metadata server will say", map[string]string{envSecret: testSecret, "K_SERVICE": "proficient-hmac"}, "", func(t *testing.T, cfg config) {
			if cfg.projectID != "" || !cfg.onCloudRun {
				t.Errorf("got projectID %q, onCloudRun %v; want empty and true", cfg.projectID, cfg.onCloudRun)
			}
		}},
		{"no secret", map[string]string{"GOOGLE_CLOUD_PROJECT": testProject}, envSecret, nil},
		{"two secret sources", with(map[string]string{envSecretFile: "/secrets/hmac"}), envSecret, nil},
		{"secret version", map[string]string{"GOOGLE_CLOUD_PROJECT": testProject, envSecretVersion: testVersion, envSecretRefresh: "90s"}, "", func(t *testing.T, cfg config) {
			if want := (secretConfig{&secretInSecretManager, testVersion, 90 * time.Second}); cfg.secret != want {
				t.Errorf("got %+v, want %+v", cfg.secret, want)
			}
		}},
		{"secret version, default refresh", map[string]string{"GOOGLE_CLOUD_PROJECT": testProject, envSecretVersion: " " + testVersion + " "}, "", func(t *testing.T, cfg config) {
			if want := (secretConfig{&secretInSecretManager, testVersion, 5 * time.Minute}); cfg.secret != want {
				t.Errorf("got %+v, want %+v", cfg.secret, want)
			}
		}},
		{"secret file, read every second", map[string]string{"GOOGLE_CLOUD_PROJECT": testProject, envSecretFile: "/secrets/hmac"}, "", func(t *testing.T, cfg config) {
			if want := (secretConfig{&secretInFile, "/secrets/hmac", time.Second}); cfg.secret != want {
				t.Errorf("got %+v, want %+v", cfg.secret, want)
			}
		}},
		// Each read of a Cloud Run secret volume is a Secret Manager access: REFRESH spaces them.
		{"secret file, read every 90 s", map[string]string{"GOOGLE_CLOUD_PROJECT": testProject, envSecretFile: "/secrets/hmac", envSecretRefresh: "90s"}, "", func(t *testing.T, cfg config) {
			if want := (secretConfig{&secretInFile, "/secrets/hmac", 90 * time.Second}); cfg.secret != want {
				t.Errorf("got %+v, want %+v", cfg.secret, want)
			}
		}},
		{"refresh with the secret by value, read once", with(map[string]string{envSecretRefresh: "90s"}), envSecretRefresh, nil},
		{"secret version, short name", map[string]string{"GOOGLE_CLOUD_PROJECT": testProject, envSecretVersion: "proficient-hmac"}, envSecretVersion, nil},
		{"refresh without a unit", with(map[string]string{envSecretRefresh: "300"}), envSecretRefresh, nil},
		{"refresh under a second", with(map[string]string{envSecretRefresh: "10ms"}), envSecretRefresh, nil},
		{"the secret in the refresh variable", with(map[string]string{envSecretRefresh: "hsec_sk_live_leak"}), envSecretRefresh, nil},
		{"CORS list", with(map[string]string{"CORS_ALLOWED_ORIGINS": "https://app.example.com, http://localhost:5000"}), "", func(t *testing.T, cfg config) {
			want := map[string]bool{"https://app.example.com": true, "http://localhost:5000": true}
			if !reflect.DeepEqual(cfg.cors.origins, want) {
				t.Errorf("origins: got %v, want %v", cfg.cors.origins, want)
			}
		}},
		{"CORS star", with(map[string]string{"CORS_ALLOWED_ORIGINS": "*"}), "", func(t *testing.T, cfg config) {
			if cfg.cors.origins != nil {
				t.Errorf("origins: got %v, want nil (any)", cfg.cors.origins)
			}
		}},
		{"CORS trailing slash", with(map[string]string{"CORS_ALLOWED_ORIGINS": "https://app.example.com/"}), "CORS_ALLOWED_ORIGINS", nil},
		{"CORS without scheme", with(map[string]string{"CORS_ALLOWED_ORIGINS": "app.example.com"}), "CORS_ALLOWED_ORIGINS", nil},
		{"CORS star in a list", with(map[string]string{"CORS_ALLOWED_ORIGINS": "*,https://a.example"}), "CORS_ALLOWED_ORIGINS", nil},
		{"CHECK_REVOKED", with(map[string]string{"CHECK_REVOKED": "true"}), "", func(t *testing.T, cfg config) {
			if !cfg.auth.checkRevoked {
				t.Error("checkRevoked: got false, want true")
			}
		}},
		{"CHECK_REVOKED not a boolean", with(map[string]string{"CHECK_REVOKED": "yes"}), "CHECK_REVOKED", nil},
		{"ALLOW_ANONYMOUS=false", with(map[string]string{"ALLOW_ANONYMOUS": "false"}), "", func(t *testing.T, cfg config) {
			if cfg.auth.allowAnonymous {
				t.Error("allowAnonymous: got true, want false")
			}
		}},
		{"ALLOW_ANONYMOUS not a boolean", with(map[string]string{"ALLOW_ANONYMOUS": "no way"}), "ALLOW_ANONYMOUS", nil},
		{"tenant", with(map[string]string{"FIREBASE_TENANT_ID": "tenant-a"}), "", func(t *testing.T, cfg config) {
			if cfg.auth.tenantID != "tenant-a" {
				t.Errorf("tenantID: got %q, want tenant-a", cfg.auth.tenantID)
			}
		}},
		{"App Check enforced, with replay protection", with(map[string]string{"ENFORCE_APP_CHECK": "true", "APP_CHECK_REPLAY_PROTECTION": "1"}), "", func(t *testing.T, cfg config) {
			if !cfg.appCheck.enforce || !cfg.appCheck.replayProtection {
				t.Errorf("got enforce %v, replay protection %v; want both", cfg.appCheck.enforce, cfg.appCheck.replayProtection)
			}
		}},
		{"replay protection without enforcement", with(map[string]string{"APP_CHECK_REPLAY_PROTECTION": "true"}), "APP_CHECK_REPLAY_PROTECTION", nil},
		{"ENFORCE_APP_CHECK not a boolean", with(map[string]string{"ENFORCE_APP_CHECK": "on"}), "ENFORCE_APP_CHECK", nil},
		{"ENFORCE_APP_CHECK=false", with(map[string]string{"ENFORCE_APP_CHECK": "false"}), "", nil},
		{"LOG_LEVEL=warning", with(map[string]string{"LOG_LEVEL": "warning"}), "", func(t *testing.T, cfg config) {
			if cfg.logLevel != slog.LevelWarn {
				t.Errorf("logLevel: got %v, want WARN", cfg.logLevel)
			}
		}},
		{"LOG_LEVEL=DEBUG", with(map[string]string{"LOG_LEVEL": "DEBUG"}), "", func(t *testing.T, cfg config) {
			if cfg.logLevel != slog.LevelDebug {
				t.Errorf("logLevel: got %v, want DEBUG", cfg.logLevel)
			}
		}},
		{"LOG_LEVEL unknown", with(map[string]string{"LOG_LEVEL": "verbose"}), "LOG_LEVEL", nil},
		{"emulator locally", with(map[string]string{envEmulatorHost: "127.0.0.1:9099"}), "", nil},
		{"emulator on Cloud Run", with(map[string]string{envEmulatorHost: "127.0.0.1:9099", "K_SERVICE": "proficient-hmac"}), envEmulatorHost, nil},
		{"emulator host with a scheme", with(map[string]string{envEmulatorHost: "http://127.0.0.1:9099"}), envEmulatorHost, nil},
		{"emulator host without a port", with(map[string]string{envEmulatorHost: "127.0.0.1"}), envEmulatorHost, nil},
		{"projects that disagree", map[string]string{"GOOGLE_CLOUD_PROJECT": "demo-a", "GCLOUD_PROJECT": "demo-b", envSecret: testSecret}, "GOOGLE_CLOUD_PROJECT", nil},
		{"projects that agree", map[string]string{"GOOGLE_CLOUD_PROJECT": "demo-a", "GCLOUD_PROJECT": "demo-a", envSecret: testSecret}, "", nil},
		{"emulator with K_REVISION", with(map[string]string{envEmulatorHost: "127.0.0.1:9099", "K_REVISION": "proficient-hmac-00001"}), envEmulatorHost, nil},
		{"emulator with K_CONFIGURATION", with(map[string]string{envEmulatorHost: "127.0.0.1:9099", "K_CONFIGURATION": "proficient-hmac"}), envEmulatorHost, nil},
		{"emulator in a Cloud Run job", with(map[string]string{envEmulatorHost: "127.0.0.1:9099", "CLOUD_RUN_JOB": "nightly"}), envEmulatorHost, nil},
		// Emulator mode: demo data on the developer's own machine only.
		{"emulator with a project not named demo-", with(map[string]string{envEmulatorHost: "127.0.0.1:9099", "GOOGLE_CLOUD_PROJECT": "my-prod-app"}), "GOOGLE_CLOUD_PROJECT", nil},
		{"emulator with GCLOUD_PROJECT not named demo-", map[string]string{envEmulatorHost: "127.0.0.1:9099", "GCLOUD_PROJECT": "my-prod-app", envSecret: testSecret}, "GCLOUD_PROJECT", nil},
		{"emulator with a secret file", map[string]string{envEmulatorHost: "127.0.0.1:9099", "GOOGLE_CLOUD_PROJECT": testProject, envSecretFile: "/secrets/hmac"}, envSecretFile, nil},
		{"emulator with a secret version", map[string]string{envEmulatorHost: "127.0.0.1:9099", "GOOGLE_CLOUD_PROJECT": testProject, envSecretVersion: testVersion}, envSecretVersion, nil},
		{"emulator with HOST=0.0.0.0", with(map[string]string{envEmulatorHost: "127.0.0.1:9099", "HOST": "0.0.0.0"}), "HOST", nil},
		{"emulator with HOST=::", with(map[string]string{envEmulatorHost: "127.0.0.1:9099", "HOST": "::"}), "HOST", nil},
		{"emulator with HOST on a LAN address", with(map[string]string{envEmulatorHost: "127.0.0.1:9099", "HOST": "192.168.1.20"}), "HOST", nil},
		{"emulator with HOST=127.0.0.1", with(map[string]string{envEmulatorHost: "127.0.0.1:9099", "HOST": "127.0.0.1"}), "", nil},
		{"emulator with HOST=::1", with(map[string]string{envEmulatorHost: "127.0.0.1:9099", "HOST": "::1"}), "", nil},
		{"emulator with HOST=localhost", with(map[string]string{envEmulatorHost: "127.0.0.1:9099", "HOST": "localhost"}), "", nil},
		{"HOST=0.0.0.0 without the emulator", with(map[string]string{"HOST": "0.0.0.0"}), "", nil},
		{"emulator on GKE", with(map[string]string{envEmulatorHost: "127.0.0.1:9099", "KUBERNETES_SERVICE_HOST": "10.0.0.1"}), envEmulatorHost, nil},
		{"emulator on App Engine (GAE_ENV)", with(map[string]string{envEmulatorHost: "127.0.0.1:9099", "GAE_ENV": "standard"}), envEmulatorHost, nil},
		{"emulator on App Engine (GAE_APPLICATION)", with(map[string]string{envEmulatorHost: "127.0.0.1:9099", "GAE_APPLICATION": "s~app"}), envEmulatorHost, nil},
		{"emulator on App Engine (GAE_SERVICE)", with(map[string]string{envEmulatorHost: "127.0.0.1:9099", "GAE_SERVICE": "default"}), envEmulatorHost, nil},
		{"emulator on Cloud Functions 1st gen (FUNCTION_NAME)", with(map[string]string{envEmulatorHost: "127.0.0.1:9099", "FUNCTION_NAME": "proficientHmac"}), envEmulatorHost, nil},
		{"emulator on Cloud Functions 1st gen (X_GOOGLE_FUNCTION_NAME)", with(map[string]string{envEmulatorHost: "127.0.0.1:9099", "X_GOOGLE_FUNCTION_NAME": "proficientHmac"}), envEmulatorHost, nil},
		{"emulator on Cloud Functions 1st gen (FUNCTION_REGION)", with(map[string]string{envEmulatorHost: "127.0.0.1:9099", "FUNCTION_REGION": "us-central1"}), envEmulatorHost, nil},
		{"emulator with FUNCTION_TARGET, as the runner and make dev set it", with(map[string]string{envEmulatorHost: "127.0.0.1:9099", "FUNCTION_TARGET": "ProficientHMAC"}), "", nil},
		{"GKE without the emulator", with(map[string]string{"KUBERNETES_SERVICE_HOST": "10.0.0.1"}), "", nil},
		{"emulator: loopback origins by default", with(map[string]string{envEmulatorHost: "127.0.0.1:9099"}), "", func(t *testing.T, cfg config) {
			if want := (corsPolicy{loopbackOnly: true}); !reflect.DeepEqual(cfg.cors, want) {
				t.Errorf("cors: got %+v, want %+v", cfg.cors, want)
			}
		}},
		{"emulator: CORS_ALLOWED_ORIGINS=* used as given", with(map[string]string{envEmulatorHost: "127.0.0.1:9099", "CORS_ALLOWED_ORIGINS": "*"}), "", func(t *testing.T, cfg config) {
			if want := (corsPolicy{}); !reflect.DeepEqual(cfg.cors, want) {
				t.Errorf("cors: got %+v, want %+v (any origin)", cfg.cors, want)
			}
		}},
		{"emulator: an origin list used as given", with(map[string]string{envEmulatorHost: "127.0.0.1:9099", "CORS_ALLOWED_ORIGINS": testOrigin}), "", func(t *testing.T, cfg config) {
			if want := (corsPolicy{origins: map[string]bool{testOrigin: true}}); !reflect.DeepEqual(cfg.cors, want) {
				t.Errorf("cors: got %+v, want %+v", cfg.cors, want)
			}
		}},
		{"CORS default port", with(map[string]string{"CORS_ALLOWED_ORIGINS": "https://b.example.com:443"}), "CORS_ALLOWED_ORIGINS", nil},
		{"CORS default http port", with(map[string]string{"CORS_ALLOWED_ORIGINS": "http://b.example.com:80"}), "CORS_ALLOWED_ORIGINS", nil},
		{"CORS path", with(map[string]string{"CORS_ALLOWED_ORIGINS": "https://b.example.com/app"}), "CORS_ALLOWED_ORIGINS", nil},
		{"CORS empty query", with(map[string]string{"CORS_ALLOWED_ORIGINS": "https://b.example.com?"}), "CORS_ALLOWED_ORIGINS", nil},
		{"CORS empty port", with(map[string]string{"CORS_ALLOWED_ORIGINS": "https://b.example.com:"}), "CORS_ALLOWED_ORIGINS", nil},
		{"CORS other port and capitals", with(map[string]string{"CORS_ALLOWED_ORIGINS": "https://B.example.com:8443,http://[::1]:5000"}), "", func(t *testing.T, cfg config) {
			want := map[string]bool{"https://b.example.com:8443": true, "http://[::1]:5000": true}
			if !reflect.DeepEqual(cfg.cors.origins, want) {
				t.Errorf("origins: got %v, want %v", cfg.cors.origins, want)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig(func(name string) string { return tt.env[name] })
			if tt.wantError == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				if tt.check != nil {
					tt.check(t, cfg)
				}
				return
			}
			var ce *configError
			if !errors.As(err, &ce) || ce.variable != tt.wantError {
				t.Fatalf("got %v, want a configuration error naming %s", err, tt.wantError)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, tt.wantError+" ") || strings.Contains(msg, "\n") || ce.fix == "" {
				t.Errorf("message %q: want one line naming %s and the fix", msg, tt.wantError)
			}
			if strings.Contains(err.Error(), "sk_live_leak") {
				t.Errorf("message %q: want no secret-like value echoed", err)
			}
		})
	}
}
