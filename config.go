package proficienthmac

import (
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// config is everything the function reads from its environment. It is read once, at start.
type config struct {
	projectID                string // empty on Cloud Run until the metadata server is asked
	secret                   secretConfig
	cors                     corsPolicy
	checkRevoked             bool
	tenantID                 string
	allowAnonymous           bool
	enforceAppCheck          bool
	appCheckReplayProtection bool
	emulatorHost             string
	onCloudRun               bool // any of Cloud Run's own variables is set
	logLevel                 slog.Level
}

// secretConfig names the one place the HMAC secret comes from.
type secretConfig struct {
	kind     secretKind
	location string        // the value itself, the file's path or the version's name
	refresh  time.Duration // how often it is read again; 0: never
}

// A secretKind is which of the three secret variables is set.
type secretKind uint8

const (
	secretFromValue   secretKind = iota + 1 // PROFICIENT_HMAC_SECRET
	secretFromFile                          // PROFICIENT_HMAC_SECRET_FILE
	secretFromVersion                       // PROFICIENT_HMAC_SECRET_VERSION
)

// variable is the environment variable that gives a secret of this kind.
func (k secretKind) variable() string {
	switch k {
	case secretFromFile:
		return envSecretFile
	case secretFromVersion:
		return envSecretVersion
	}
	return envSecret
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

const (
	envSecret        = "PROFICIENT_HMAC_SECRET"
	envSecretFile    = "PROFICIENT_HMAC_SECRET_FILE"
	envSecretVersion = "PROFICIENT_HMAC_SECRET_VERSION"
	envSecretRefresh = "PROFICIENT_HMAC_SECRET_REFRESH"
	envEmulatorHost  = "FIREBASE_AUTH_EMULATOR_HOST"
)

// cloudRunMarkers are the variables Cloud Run sets in services, functions and jobs: with any of
// them the function is not on a laptop, and must never trust the Auth emulator.
var cloudRunMarkers = []string{"K_SERVICE", "K_REVISION", "K_CONFIGURATION", "CLOUD_RUN_JOB"}

// googleRuntimeMarkers are what Google's other runtimes set: GKE (any Kubernetes), App Engine,
// Cloud Functions (1st gen). FUNCTION_TARGET is not one: the local runner and make dev set it.
var googleRuntimeMarkers = []string{"KUBERNETES_SERVICE_HOST", "GAE_ENV", "GAE_APPLICATION", "GAE_SERVICE",
	"FUNCTION_NAME", "X_GOOGLE_FUNCTION_NAME", "FUNCTION_REGION"}

var secretVersionName = regexp.MustCompile(`^projects/[^/]+/secrets/[^/]+/versions/[^/]+$`)

// loadConfig reads and checks the environment through getenv. It does no I/O.
func loadConfig(getenv func(string) string) (config, error) {
	cfg := config{
		projectID:    firstSet(getenv, "GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT"),
		tenantID:     strings.TrimSpace(getenv("FIREBASE_TENANT_ID")),
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
	if cfg.checkRevoked, err = parseBool(getenv, "CHECK_REVOKED", false); err != nil {
		return cfg, err
	}
	if cfg.allowAnonymous, err = parseBool(getenv, "ALLOW_ANONYMOUS", true); err != nil {
		return cfg, err
	}
	if cfg.enforceAppCheck, err = parseBool(getenv, "ENFORCE_APP_CHECK", false); err != nil {
		return cfg, err
	}
	if cfg.appCheckReplayProtection, err = parseBool(getenv, "APP_CHECK_REPLAY_PROTECTION", false); err != nil {
		return cfg, err
	}
	if cfg.appCheckReplayProtection && !cfg.enforceAppCheck {
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

func loadSecretConfig(getenv func(string) string) (secretConfig, error) {
	var s secretConfig
	sources := [...]secretConfig{
		{secretFromValue, getenv(envSecret), 0},
		// A secret volume mount changes in place when the secret rotates: look again every second.
		{secretFromFile, getenv(envSecretFile), time.Second},
		{secretFromVersion, strings.TrimSpace(getenv(envSecretVersion)), 5 * time.Minute},
	}
	set := 0
	for _, source := range sources {
		if source.location != "" {
			s = source
			set++
		}
	}
	if set != 1 {
		problem := "is not set"
		if set > 1 {
			problem = "is set together with " + envSecretFile + " or " + envSecretVersion
		}
		return s, &configError{envSecret, problem, "set exactly one of " + envSecret + " (the hsec_ value), " +
			envSecretFile + " (a file holding it) or " + envSecretVersion + " (projects/P/secrets/S/versions/V)"}
	}
	if s.kind == secretFromVersion && !secretVersionName.MatchString(s.location) {
		return s, &configError{envSecretVersion, "is not a secret version name (it holds " + describeValue(s.location) + ")",
			"give the full name projects/PROJECT/secrets/NAME/versions/VERSION (VERSION may be latest)"}
	}
	if v := getenv(envSecretRefresh); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			// Described, never echoed: it is the fourth variable named like the secret.
			return s, &configError{envSecretRefresh, "is not a Go duration of at least 1s (it holds " + describeValue(v) + ")",
				"give a Go duration of at least 1s, such as 5m"}
		}
		if s.kind == secretFromVersion {
			s.refresh = d
		}
	}
	return s, nil
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
