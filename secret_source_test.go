package proficienthmac

import (
	"errors"
	"fmt"
	"go/ast"
	"go/token"
	"strings"
	"testing"
	"time"
)

// TestSecretBackends holds every way to give the secret to every rule that concerns them: it is
// set alone, with each other one, with PROFICIENT_HMAC_SECRET_REFRESH, holding the secret itself
// where it should hold a path or a name, and against the Auth emulator. A backend added to secretBackends is tested here once it has an example value.
func TestSecretBackends(t *testing.T) {
	examples := map[string]string{ // a value each backend accepts
		envSecret:        testSecret,
		envSecretFile:    "/secrets/hmac",
		envSecretVersion: testVersion,
	}
	load := func(env map[string]string) (config, error) {
		all := map[string]string{"GOOGLE_CLOUD_PROJECT": testProject}
		for k, v := range env {
			all[k] = v
		}
		return loadConfig(func(name string) string { return all[name] })
	}
	named := func(err error) string {
		var cfgErr *configError
		if errors.As(err, &cfgErr) {
			return cfgErr.variable
		}
		return ""
	}
	for _, b := range secretBackends {
		example, ok := examples[b.variable]
		if !ok || b.holds == "" || b.open == nil || b.fix == "" {
			t.Errorf("%s: give it an example here, and what it holds, open and fix", b.variable)
			continue
		}
		cfg, err := load(map[string]string{b.variable: example})
		if err != nil || cfg.secret.backend != b || cfg.secret.location != example || cfg.secret.refresh != b.refresh {
			t.Errorf("%s alone: got %+v, %v", b.variable, cfg.secret, err)
		}
		for _, other := range secretBackends {
			if other != b {
				if _, err := load(map[string]string{b.variable: example, other.variable: examples[other.variable]}); named(err) == "" {
					t.Errorf("%s with %s: got %v, want a configuration error", b.variable, other.variable, err)
				}
			}
		}
		cfg, err = load(map[string]string{b.variable: example, envSecretRefresh: "90s"})
		if b.refresh == 0 && named(err) != envSecretRefresh || b.refresh != 0 && (err != nil || cfg.secret.refresh != 90*time.Second) {
			t.Errorf("%s with %s=90s: got %+v, %v; want it read every 90 s, or an error if it is read once", b.variable, envSecretRefresh, cfg.secret, err)
		}
		if !b.byValue {
			_, err = load(map[string]string{b.variable: testSecret})
			if named(err) != b.variable || strings.Contains(err.Error(), testSecret[5:]) {
				t.Errorf("%s holding the secret itself: got %v; want a configuration error that does not repeat it", b.variable, err)
			}
		}
		_, err = load(map[string]string{b.variable: example, envEmulatorHost: "127.0.0.1:9099"})
		if b.byValue && err != nil || !b.byValue && named(err) != b.variable {
			t.Errorf("%s against the emulator: got %v; want it refused unless it is the secret by value", b.variable, err)
		}
	}
}

// TestEverySecretBackendIsListed: a backend is a file declaring a secretBackend; one left out of
// secretBackends would compile, pass its own tests, and never be offered.
func TestEverySecretBackendIsListed(t *testing.T) {
	declared := 0
	fset, files := productionFiles(t)
	for _, f := range files {
		for _, decl := range f.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.VAR {
				continue
			}
			for _, spec := range gen.Specs {
				for i, value := range spec.(*ast.ValueSpec).Values {
					if lit, ok := value.(*ast.CompositeLit); ok && fmt.Sprint(lit.Type) == "secretBackend" {
						declared++
						t.Logf("%s: %s", fset.Position(lit.Pos()), spec.(*ast.ValueSpec).Names[i])
					}
				}
			}
		}
	}
	if declared != len(secretBackends) {
		t.Errorf("%d secretBackend values are declared, %d are in secretBackends (secret.go): list every one", declared, len(secretBackends))
	}
}
