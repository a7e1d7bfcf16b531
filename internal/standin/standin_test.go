package standin

import (
	"crypto/tls"
	"net/http"
	"net/url"
	"testing"
)

// TestProxy: a client configured only with the proxy and the CA reaches the key endpoint, and
// the proxy carries nothing but *.googleapis.com:443.
func TestProxy(t *testing.T) {
	g, err := Start("demo-x")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	proxy, _ := url.Parse(g.ProxyURL)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxy), TLSClientConfig: &tls.Config{RootCAs: g.CAPool}}}

	resp, err := client.Get("https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || g.KeyFetches() != 1 {
		t.Errorf("got %d after %d fetches, want 200 after 1", resp.StatusCode, g.KeyFetches())
	}

	if _, err := client.Get("https://example.com/"); err == nil {
		t.Error("the proxy carried a request to example.com")
	}
	if got := g.Refused(); len(got) != 1 || got[0] != "example.com:443" {
		t.Errorf("refused: got %q, want [example.com:443]", got)
	}
}
