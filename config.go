package proficienthmac

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
)

// config is everything the function reads from its environment. It is read once, at start.
type config struct {
	projectID    string // empty on Cloud Run until the metadata server is asked
	secret       secretConfig
	cors         corsPolicy
	auth         authPolicy
	appCheck     appCheckConfig
	emulatorHost string
	onCloudRun   bool // any of Cloud Run's own variables is set
	logLevel     slog.Level
}

// authPolicy is which verified users get an HMAC, and how far their token is checked.
type authPolicy struct {
	checkRevoked   bool   // CHECK_REVOKED: ask the Auth backend about each token
	tenantID       string // FIREBASE_TENANT_ID: "" for the project's own users only
	allowAnonymous bool   // ALLOW_ANONYMOUS
}

// appCheckConfig is how App Check tokens are treated.
type appCheckConfig struct {
	enforce          bool // ENFORCE_APP_CHECK: a request without a valid token is refused
	replayProtection bool // APP_CHECK_REPLAY_PROTECTION: each token is consumed, once
}

// A configError is a mistake in the environment: it names the variable and the fix, and never
// carries the secret's value.
type configError struct {
	variable string
	problem  string
	fix      string
}

func (e *configError) Error() string {
	return fmt.Sprintf("%s %s; %s", e.variable, e.problem, e.fix)
}

const envEmulatorHost = "FIREBASE_AUTH_EMULATOR_HOST"

// cloudRunMarkers are the variables Cloud Run sets in services, functions and jobs: with any of
// them the function is not on a laptop, and must never trust the Auth emulator.
var cloudRunMarkers = []string{"K_SERVICE", "K_REVISION", "K_CONFIGURATION", "CLOUD_RUN_JOB"}

// googleRuntimeMarkers are what Google's other runtimes set: GKE (any Kubernetes), App Engine,
// Cloud Functions (1st gen). FUNCTION_TARGET is not one: the local runner and make dev set it.
var googleRuntimeMarkers = []string{"KUBERNETES_SERVICE_HOST", "GAE_ENV", "GAE_APPLICATION", "GAE_SERVICE",
	"FUNCTION_NAME", "X_GOOGLE_FUNCTION_NAME", "FUNCTION_REGION"}

// loadConfig reads and checks the environment through getenv. It does no I/O.
func loadConfig(getenv func(string) string) (config, error) {
	cfg := config{
		projectID:    firstSet(getenv, "GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT"),
		auth:         authPolicy{tenantID: strings.TrimSpace(getenv("FIREBASE_TENANT_ID"))},
		emulatorHost: getenv(envEmulatorHost),
		onCloudRun:   firstSet(getenv, cloudRunMarkers...) != "",
	}
	if err := checkProject(cfg, getenv); err != nil {
		return cfg, err
	}
	if err := checkEmulatorConfig(cfg, getenv); err != nil {
		return cfg, err
	}

	var err error
	if cfg.secret, err = loadSecretConfig(getenv); err != nil {
		return cfg, err
	}
	if cfg.cors, err = parseOrigins(getenv("CORS_ALLOWED_ORIGINS")); err != nil {
		return cfg, err
	}
	if cfg.emulatorHost != "" && strings.TrimSpace(getenv("CORS_ALLOWED_ORIGINS")) == "" {
		cfg.cors = corsPolicy{loopbackOnly: true}
	}
	for _, b := range []struct {
		name     string
		value    *bool
		fallback bool
	}{
		{"CHECK_REVOKED", &cfg.auth.checkRevoked, false},
		{"ALLOW_ANONYMOUS", &cfg.auth.allowAnonymous, true},
		{"ENFORCE_APP_CHECK", &cfg.appCheck.enforce, false},
		{"APP_CHECK_REPLAY_PROTECTION", &cfg.appCheck.replayProtection, false},
	} {
		if *b.value, err = parseBool(getenv, b.name, b.fallback); err != nil {
			return cfg, err
		}
	}
	if cfg.appCheck.replayProtection && !cfg.appCheck.enforce {
		return cfg, &configError{"APP_CHECK_REPLAY_PROTECTION", "is true without ENFORCE_APP_CHECK",
			"set ENFORCE_APP_CHECK=true too: a token that need not be sent cannot protect against replay"}
	}
	if cfg.logLevel, err = parseLevel(getenv("LOG_LEVEL")); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// checkProject checks which project the function serves.
func checkProject(cfg config, getenv func(string) string) error {
	if cfg.projectID == "" && !cfg.onCloudRun {
		return &configError{"GOOGLE_CLOUD_PROJECT", "is not set",
			"set it to your Firebase project ID (on Cloud Run the metadata server supplies it)"}
	}
	if a, b := strings.TrimSpace(getenv("GOOGLE_CLOUD_PROJECT")), strings.TrimSpace(getenv("GCLOUD_PROJECT")); a != "" && b != "" && a != b {
		return &configError{"GOOGLE_CLOUD_PROJECT", fmt.Sprintf("is %.100q but GCLOUD_PROJECT is %.100q", a, b),
			"set both to your Firebase project ID, or unset one"}
	}
	return nil
}

func parseBool(getenv func(string) string, name string, fallback bool) (bool, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return fallback, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return fallback, &configError{name, fmt.Sprintf("is %q", v), "set it to true or false"}
	}
	return b, nil
}

func parseLevel(v string) (slog.Level, error) {
	var level slog.Level
	if v == "" {
		return slog.LevelInfo, nil
	}
	if strings.EqualFold(v, "warning") {
		v = "warn"
	}
	if err := level.UnmarshalText([]byte(v)); err != nil {
		return level, &configError{"LOG_LEVEL", fmt.Sprintf("is %q", v), "set it to debug, info, warning or error"}
	}
	return level, nil
}

// firstSetName is the name of the first of names that is set, or "".
func firstSetName(getenv func(string) string, names ...string) string {
	for _, n := range names {
		if strings.TrimSpace(getenv(n)) != "" {
			return n
		}
	}
	return ""
}

// firstSet is the value, trimmed, of the first of names that is set, or "".
func firstSet(getenv func(string) string, names ...string) string {
	if name := firstSetName(getenv, names...); name != "" {
		return strings.TrimSpace(getenv(name))
	}
	return ""
}
