package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// readmeCommands are the gcloud commands in the sh blocks of the README and of the guides in
// docs/, as a reader would paste them: continuation lines joined, each with what it is piped
// from, or the command inside a $(…), on its own.
func readmeCommands(t *testing.T) []string {
	t.Helper()
	guides, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	var commands []string
	for _, name := range append([]string{filepath.Join(root, "README.md")}, guides...) {
		text, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		commands = append(commands, shellCommands(string(text))...)
	}
	return commands
}

// shellCommands are the gcloud commands in text's sh blocks.
func shellCommands(text string) []string {
	var commands []string
	inShell, line := false, ""
	lines := bufio.NewScanner(strings.NewReader(text))
	for lines.Scan() {
		text := lines.Text()
		switch {
		case strings.HasPrefix(text, "```"):
			inShell = strings.TrimPrefix(text, "```") == "sh"
			continue
		case !inShell:
			continue
		}
		line += strings.TrimSpace(text)
		if strings.HasSuffix(line, `\`) {
			line = strings.TrimSuffix(line, `\`) + " "
			continue
		}
		if inner := substitution.FindStringSubmatch(line); inner != nil {
			commands = append(commands, inner[1])
		} else if strings.HasPrefix(line, "gcloud ") || strings.Contains(line, "| gcloud ") {
			commands = append(commands, line)
		}
		line = ""
	}
	return commands
}

var substitution = regexp.MustCompile(`\$\((gcloud .*)\)`) // to the last ")", past any in quotes

// TestREADMEDeployCommandsParse runs each gcloud command of the README offline, with an empty
// configuration: gcloud checks a command's arguments before it looks for credentials, so each
// must fail for lack of credentials and for nothing else (no unknown flag, no bad value, no
// missing argument).
func TestREADMEDeployCommandsParse(t *testing.T) {
	needGcloud(t)
	commands := readmeCommands(t)
	for _, want := range []string{"gcloud functions deploy proficient-hmac", "gcloud run deploy proficient-hmac",
		"gcloud secrets create", "gcloud secrets versions add", "gcloud secrets add-iam-policy-binding", "gcloud logging read",
		"gcloud services enable", "gcloud projects describe", "--role=roles/run.builder", "--role=roles/firebaseappcheck.tokenVerifier"} {
		found := false
		for _, c := range commands {
			found = found || strings.Contains(c, want)
		}
		if !found {
			t.Errorf("the README and docs/ have no %q command; found %q", want, commands)
		}
	}
	for _, command := range commands {
		t.Run(strings.Join(strings.Fields(command)[:3], " "), func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command("bash", "-c", command)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "PROJECT=demo-readme-check", "REGION=us-central1",
				"RUNTIME_SA=123-compute@developer.gserviceaccount.com",
				"CLOUDSDK_CONFIG="+t.TempDir(), "CLOUDSDK_CORE_DISABLE_PROMPTS=1",
				"CLOUDSDK_CORE_DISABLE_USAGE_REPORTING=true", "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK=true")
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("%s: succeeded offline without credentials:\n%s", command, out)
			}
			if !strings.Contains(string(out), "You do not currently have an active account selected") {
				t.Errorf("%s: want it to fail only for lack of credentials, got:\n%s", command, out)
			}
		})
	}
}

// deployBlock is the README's first sh block under "## Deploy", as written.
func deployBlock(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, deploy, ok := strings.Cut(string(readme), "\n## Deploy\n")
	if !ok {
		t.Fatal("the README has no Deploy section")
	}
	_, block, ok := strings.Cut(deploy, "```sh\n")
	if !ok {
		t.Fatal("the Deploy section has no sh block")
	}
	block, _, _ = strings.Cut(block, "```")
	return block
}

// TestREADMEDeployEnablesTheAPIs: the services a deploy of this function uses.
func TestREADMEDeployEnablesTheAPIs(t *testing.T) {
	var enable string
	for _, c := range readmeCommands(t) {
		if strings.HasPrefix(c, "gcloud services enable ") {
			enable = c
		}
	}
	for _, api := range []string{"cloudfunctions.googleapis.com", "run.googleapis.com", "cloudbuild.googleapis.com",
		"artifactregistry.googleapis.com", "secretmanager.googleapis.com"} {
		if !strings.Contains(enable, " "+api+" ") {
			t.Errorf("the README's gcloud services enable lacks %s: %q", api, enable)
		}
	}
}

// fakeGcloud is a gcloud that logs each call's arguments to $GCLOUD_LOG and answers
// "projects describe" as $DESCRIBE says: "fail" (exit 1, as when not logged in), "empty" (no
// output), or anything else, printed as the project number. Every other call succeeds.
const fakeGcloud = `#!/usr/bin/env bash
echo "$*" >>"$GCLOUD_LOG"
[[ -t 0 ]] || cat >/dev/null
if [[ $1 == projects && $2 == describe ]]; then
  case $DESCRIBE in
    fail) echo "ERROR: (gcloud.projects.describe) You do not currently have an active account selected." >&2; exit 1 ;;
    empty) exit 0 ;;
    *) echo "$DESCRIBE" ;;
  esac
fi
`

// TestREADMEDeployStopsOnFailure runs the README's deploy block as written, with a gcloud
// whose project lookup fails or answers nothing: the block must stop there, before any command
// could use a service account named "-compute@developer.gserviceaccount.com"; when the lookup
// works, every command runs and the account carries the project number.
func TestREADMEDeployStopsOnFailure(t *testing.T) {
	block := deployBlock(t)
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "gcloud"), []byte(fakeGcloud), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		describe string
		wantErr  bool
	}{
		{"fail", true},
		{"empty", true},
		{"123456789012", false},
	} {
		t.Run(tc.describe, func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "gcloud.log")
			cmd := exec.Command("bash", "-c", block)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
				"GCLOUD_LOG="+log, "DESCRIBE="+tc.describe)
			out, err := cmd.CombinedOutput()
			if (err != nil) != tc.wantErr {
				t.Fatalf("the block's error: got %v, want an error: %v\n%s", err, tc.wantErr, out)
			}
			calls, err := os.ReadFile(log)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(calls)), "\n")
			last := lines[len(lines)-1]
			if tc.wantErr {
				if !strings.HasPrefix(last, "projects describe ") {
					t.Errorf("the block went on after the failed lookup; gcloud calls:\n%s", calls)
				}
				return
			}
			if !strings.HasPrefix(last, "functions deploy proficient-hmac ") {
				t.Errorf("the block stopped before the deploy; gcloud calls:\n%s", calls)
			}
			if got, want := strings.Count(string(calls), "serviceAccount:123456789012-compute@developer.gserviceaccount.com"), 2; got != want {
				t.Errorf("got %d calls naming the runtime service account, want %d:\n%s", got, want, calls)
			}
		})
	}
}
