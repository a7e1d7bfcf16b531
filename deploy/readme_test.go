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

// readmeCommands are the gcloud commands in the README's sh blocks, as a reader would paste
// them: continuation lines joined, each with what it is piped from, or the command inside a
// $(…), on its own.
func readmeCommands(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var commands []string
	inShell, line := false, ""
	lines := bufio.NewScanner(f)
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
	commands := readmeCommands(t)
	for _, want := range []string{"gcloud functions deploy proficient-hmac", "gcloud run deploy proficient-hmac",
		"gcloud secrets create", "gcloud secrets versions add", "gcloud secrets add-iam-policy-binding", "gcloud logging read"} {
		found := false
		for _, c := range commands {
			found = found || strings.Contains(c, want)
		}
		if !found {
			t.Errorf("the README has no %q command; found %q", want, commands)
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
