package deploy

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// shellBlock is one sh block of the README or of a guide in docs/: its gcloud commands as a reader
// would paste them, continuation lines joined, each with what it is piped from, or the command
// inside a $(…), on its own.
type shellBlock struct {
	file     string
	commands []string
}

// readmeBlocks are the sh blocks of the README and of the guides in docs/, in order.
func readmeBlocks(t *testing.T) []shellBlock {
	t.Helper()
	var blocks []shellBlock
	for _, name := range guides(t) {
		text, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, commands := range shellBlocks(string(text)) {
			blocks = append(blocks, shellBlock{name, commands})
		}
	}
	return blocks
}

// guides are README.md and docs/*.md, relative to root.
func guides(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"README.md"}
	for _, doc := range docs {
		names = append(names, filepath.Join("docs", filepath.Base(doc)))
	}
	return names
}

// readmeCommands are the gcloud commands of every block of readmeBlocks.
func readmeCommands(t *testing.T) []string {
	t.Helper()
	var commands []string
	for _, block := range readmeBlocks(t) {
		commands = append(commands, block.commands...)
	}
	return commands
}

// shellBlocks are the gcloud commands of each of text's sh blocks.
func shellBlocks(text string) [][]string {
	var blocks [][]string
	var commands []string
	inShell, line := false, ""
	lines := bufio.NewScanner(strings.NewReader(text))
	for lines.Scan() {
		text := lines.Text()
		switch {
		case strings.HasPrefix(text, "```"):
			if inShell {
				blocks = append(blocks, commands)
				commands = nil
			}
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
			// What gcloud's output is piped into is not gcloud's to check (and would decide
			// the pipeline's exit status).
			if gcloud, _, piped := strings.Cut(line[strings.Index(line, "gcloud "):], " | "); piped {
				line = line[:strings.Index(line, "gcloud ")] + gcloud
			}
			commands = append(commands, line)
		}
		line = ""
	}
	return blocks
}

var substitution = regexp.MustCompile(`\$\((gcloud .*)\)`) // to the last ")", past any in quotes

// gcloudEnv is the environment in which the README's commands run offline: the variables its
// deploy block sets, and an empty gcloud configuration.
func gcloudEnv(t *testing.T) []string {
	return append(os.Environ(), "PROJECT=demo-readme-check", "REGION=us-central1",
		"RUNTIME_SA=proficient-hmac@demo-readme-check.iam.gserviceaccount.com",
		"BUILD_SA=proficient-hmac-build@demo-readme-check.iam.gserviceaccount.com",
		"CLOUDSDK_CONFIG="+t.TempDir(), "CLOUDSDK_CORE_DISABLE_PROMPTS=1",
		"CLOUDSDK_CORE_DISABLE_USAGE_REPORTING=true", "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK=true")
}

// TestREADMEDeployCommandsParse runs each gcloud command of the README offline, with an empty
// configuration: gcloud checks a command's arguments before it looks for credentials, so each
// must fail for lack of credentials and for nothing else (no unknown flag, no bad value, no
// missing argument).
func TestREADMEDeployCommandsParse(t *testing.T) {
	needGcloud(t)
	commands := readmeCommands(t)
	for _, want := range []string{"gcloud functions deploy proficient-hmac", "gcloud run deploy proficient-hmac",
		"gcloud iam service-accounts create", "gcloud secrets create", "gcloud secrets versions add",
		"gcloud secrets add-iam-policy-binding", "gcloud run services update proficient-hmac",
		"gcloud run services describe proficient-hmac", "gcloud logging read", "gcloud services enable",
		"--role=roles/run.builder", "--role=roles/firebaseappcheck.tokenVerifier", "--role=roles/firebaseauth.viewer"} {
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
			cmd.Env = gcloudEnv(t)
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

// deploying reports whether command deploys the function: what needs the settings below.
func deploying(command string) bool {
	for _, deploy := range []string{"gcloud functions deploy ", "gcloud beta functions deploy ", "gcloud run deploy "} {
		if strings.HasPrefix(command, deploy) {
			return true
		}
	}
	return false
}

// TestDeployCommandsAreLeastPrivilegeAndCapped: every deploy command in the README and docs/
// names the dedicated accounts (the Compute Engine default one is often a project Editor), caps
// the instances (anyone can get an ID token, anonymously), and makes the function public without
// granting allUsers (which Domain Restricted Sharing refuses): gcloud run deploy turns the invoker
// check off itself; gcloud functions deploy cannot, so its block must do it next, with gcloud run
// services update.
func TestDeployCommandsAreLeastPrivilegeAndCapped(t *testing.T) {
	deploys := 0
	for _, block := range readmeBlocks(t) {
		for i, command := range block.commands {
			if strings.Contains(command, "--allow-unauthenticated") || strings.Contains(command, "allUsers") {
				t.Errorf("%s: %s\ngrants the invoker role to allUsers; turn the invoker check off instead (--no-invoker-iam-check)", block.file, command)
			}
			if !deploying(command) {
				continue
			}
			deploys++
			for _, want := range []struct{ flag, why string }{
				{"--service-account=", "the runtime's dedicated account"},
				{"--build-service-account=projects/", "the build's dedicated account"},
				{"--max-instances=", "a cap on instances, and so on cost"},
			} {
				if !strings.Contains(command, " "+want.flag) {
					t.Errorf("%s: %s\nhas no %s (%s)", block.file, command, want.flag, want.why)
				}
			}
			if strings.HasPrefix(command, "gcloud run deploy ") {
				if !strings.Contains(command, " --no-invoker-iam-check") {
					t.Errorf("%s: %s\nhas no --no-invoker-iam-check: Hosting and browsers could not call it", block.file, command)
				}
				continue
			}
			if !strings.Contains(command, " --no-allow-unauthenticated") {
				t.Errorf("%s: %s\nhas no --no-allow-unauthenticated (without it gcloud prompts, or keeps an allUsers binding)", block.file, command)
			}
			public := false
			for _, next := range block.commands[i+1:] {
				public = public || strings.HasPrefix(next, "gcloud run services update proficient-hmac ") &&
					strings.Contains(next, " --no-invoker-iam-check")
			}
			if !public {
				t.Errorf("%s: %s\nis not followed in its block by gcloud run services update proficient-hmac --no-invoker-iam-check: Hosting and browsers could not call it", block.file, command)
			}
		}
	}
	if deploys < 2 {
		t.Errorf("found %d deploy commands, want both gcloud functions deploy and gcloud run deploy", deploys)
	}
}

// replacesAll is a flag, given a value, that first removes every environment variable or secret
// the function has: the secret's own variable goes with the rest, and the new revision stops at
// start. Mentioning the flag by name is fine.
var replacesAll = regexp.MustCompile(`--(set-env-vars|set-secrets|env-vars-file|clear-env-vars|clear-secrets)([= ][^\s` + "`" + `]|\s*$|\s*\\)`)

// TestNoCommandReplacesEveryVariable: the README and docs/ (commands and prose) set variables and
// secrets with --update-env-vars and --update-secrets only, so a deploy run again, or a setting
// changed later, keeps every other variable.
func TestNoCommandReplacesEveryVariable(t *testing.T) {
	for _, name := range guides(t) {
		text, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		for n, line := range strings.Split(string(text), "\n") {
			if m := replacesAll.FindStringSubmatch(line); m != nil {
				t.Errorf("%s:%d: --%s removes every other variable or secret first (the secret's too); use --update-env-vars or --update-secrets:\n%s",
					name, n+1, m[1], line)
			}
		}
	}
}

// TestDescribeNamesTheDeployedResource: gcloud run deploy makes a Cloud Run service, which
// gcloud functions describe does not find; gcloud run services describe finds the function
// whichever command deployed it. Each describe asks for its resource's URL field.
func TestDescribeNamesTheDeployedResource(t *testing.T) {
	for _, block := range readmeBlocks(t) {
		viaFunctions, viaRun := false, false
		for _, command := range block.commands {
			viaFunctions = viaFunctions || strings.HasPrefix(command, "gcloud functions deploy ")
			viaRun = viaRun || strings.HasPrefix(command, "gcloud run deploy ")
		}
		for _, command := range block.commands {
			switch {
			case strings.HasPrefix(command, "gcloud functions describe "):
				if !viaFunctions || viaRun {
					t.Errorf("%s: %s\nfinds only a function deployed with gcloud functions deploy, and this block does not deploy one; use gcloud run services describe", block.file, command)
				}
				if !strings.Contains(command, "--format='value(serviceConfig.uri)'") {
					t.Errorf("%s: %s\nwant --format='value(serviceConfig.uri)'", block.file, command)
				}
			case strings.HasPrefix(command, "gcloud run services describe "):
				if !strings.Contains(command, "--format='value(status.url)'") {
					t.Errorf("%s: %s\nwant --format='value(status.url)'", block.file, command)
				}
			}
		}
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
	for _, c := range shellBlocks("```sh\n" + deployBlock(t) + "```\n")[0] {
		if strings.HasPrefix(c, "gcloud services enable ") {
			enable = c
		}
	}
	for _, api := range []string{"cloudfunctions.googleapis.com", "run.googleapis.com", "cloudbuild.googleapis.com",
		"artifactregistry.googleapis.com", "secretmanager.googleapis.com", "iam.googleapis.com"} {
		if !strings.Contains(enable, " "+api+" ") {
			t.Errorf("the README's gcloud services enable lacks %s: %q", api, enable)
		}
	}
}

// fakeGcloud is a gcloud that logs each call's arguments to $GCLOUD_LOG and fails the call whose
// number is $FAIL_AT (as a real call fails when not logged in, or refused); every other call
// succeeds.
const fakeGcloud = `#!/usr/bin/env bash
echo "$*" >>"$GCLOUD_LOG"
[[ -t 0 ]] || cat >/dev/null
if (( $(wc -l <"$GCLOUD_LOG") == ${FAIL_AT:-0} )); then
  echo "ERROR: (gcloud) call $FAIL_AT fails" >&2
  exit 1
fi
`

// runDeployBlock runs the README's deploy block as a script, as the README says to, with
// fakeGcloud first on PATH failing call failAt (0: none), and returns the calls it made.
func runDeployBlock(t *testing.T, failAt int) (calls []string, err error) {
	t.Helper()
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "gcloud"), []byte(fakeGcloud), 0o755); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "gcloud.log")
	script := filepath.Join(t.TempDir(), "deploy.sh")
	if err := os.WriteFile(script, []byte(deployBlock(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", script)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"GCLOUD_LOG="+log, fmt.Sprint("FAIL_AT=", failAt))
	out, err := cmd.CombinedOutput()
	logged, readErr := os.ReadFile(log)
	if readErr != nil && !os.IsNotExist(readErr) {
		t.Fatal(readErr)
	}
	if text := strings.TrimSpace(string(logged)); text != "" {
		calls = strings.Split(text, "\n")
	}
	if err != nil {
		err = fmt.Errorf("%w\n%s", err, out)
	}
	return calls, err
}

// TestREADMEDeployBlockAsAScript runs the README's deploy block as a script against a gcloud that
// records its arguments: it makes the documented calls in order, with the dedicated accounts and
// nothing granted to the Compute Engine default one; and whichever call fails, it stops there.
func TestREADMEDeployBlockAsAScript(t *testing.T) {
	calls, err := runDeployBlock(t, 0)
	if err != nil {
		t.Fatalf("the block failed with every gcloud call succeeding: %v", err)
	}
	if len(calls) == 0 {
		t.Fatal("the block made no gcloud call")
	}
	project := regexp.MustCompile(`--project=(\S+)`).FindStringSubmatch(calls[0])
	if project == nil {
		t.Fatalf("the first call names no --project: %q", calls[0])
	}
	runtimeSA := "proficient-hmac@" + project[1] + ".iam.gserviceaccount.com"
	buildSA := "proficient-hmac-build@" + project[1] + ".iam.gserviceaccount.com"
	want := []struct {
		prefix string
		has    []string
	}{
		{"services enable ", nil},
		{"iam service-accounts create proficient-hmac ", nil},
		{"iam service-accounts create proficient-hmac-build ", nil},
		{"secrets create proficient-hmac-secret ", []string{"--data-file=-"}},
		{"secrets add-iam-policy-binding proficient-hmac-secret ", []string{"--member=serviceAccount:" + runtimeSA,
			"--role=roles/secretmanager.secretAccessor"}},
		{"projects add-iam-policy-binding " + project[1] + " ", []string{"--member=serviceAccount:" + buildSA,
			"--role=roles/run.builder"}},
		{"functions deploy proficient-hmac ", []string{"--service-account=" + runtimeSA,
			"--build-service-account=projects/" + project[1] + "/serviceAccounts/" + buildSA, "--max-instances=",
			"--no-allow-unauthenticated"}},
		{"run services update proficient-hmac ", []string{"--no-invoker-iam-check"}},
		{"run services describe proficient-hmac ", []string{"--format=value(status.url)"}},
	}
	for i, w := range want {
		if i >= len(calls) {
			t.Errorf("call %d: missing, want %q", i+1, w.prefix)
			continue
		}
		if !strings.HasPrefix(calls[i], w.prefix) {
			t.Errorf("call %d: got %q, want %q…", i+1, calls[i], w.prefix)
		}
		for _, has := range w.has {
			if !strings.Contains(calls[i], " "+has) {
				t.Errorf("call %d: %q lacks %q", i+1, calls[i], has)
			}
		}
	}
	if len(calls) != len(want) {
		t.Errorf("got %d calls, want %d:\n%s", len(calls), len(want), strings.Join(calls, "\n"))
	}
	if all := strings.Join(calls, "\n"); strings.Contains(all, "-compute@developer.gserviceaccount.com") {
		t.Errorf("a call names the Compute Engine default service account:\n%s", all)
	}

	for failAt := 1; failAt <= len(calls); failAt++ {
		t.Run(fmt.Sprint("call ", failAt, " fails"), func(t *testing.T) {
			got, err := runDeployBlock(t, failAt)
			if err == nil {
				t.Errorf("the block succeeded although call %d failed", failAt)
			}
			if len(got) != failAt {
				t.Errorf("the block went on after call %d failed; gcloud calls:\n%s", failAt, strings.Join(got, "\n"))
			}
		})
	}
}
