package standin

import (
	"context"
	"strings"
	"testing"
	"time"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
)

// TestEnvReachesSecretManager: the real Secret Manager client, configured by nothing but Env
// (as another process would be), reads the stand-in's secret over gRPC through the proxy.
func TestEnvReachesSecretManager(t *testing.T) {
	g, err := Start("demo-x")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	g.Set(func(g *Google) { g.Secret = "hsec_x" })
	env, err := g.Env()
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		t.Setenv(name, value)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	client, err := secretmanager.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	resp, err := client.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: "projects/demo-x/secrets/proficient-hmac/versions/latest"})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(resp.GetPayload().GetData()); got != "hsec_x" || g.SecretReads() != 1 || len(g.Refused()) != 0 {
		t.Errorf("got %q after %d reads, refused %q; want hsec_x after 1, none refused", got, g.SecretReads(), g.Refused())
	}
}
