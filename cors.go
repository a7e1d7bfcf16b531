package proficienthmac

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"
)

const allowedMethods = "GET, POST, OPTIONS"

// maxAllowedHeaders bounds the header names a preflight answer echoes; browsers ask for a few
// dozen bytes' worth.
const maxAllowedHeaders = 2 << 10

// corsPolicy says which browser origins may read the answers. The bearer token, not the origin,
// is the credential, so by default every origin may, as with Firebase callables.
type corsPolicy struct {
	origins      map[string]bool // nil: any origin
	loopbackOnly bool            // emulator mode without CORS_ALLOWED_ORIGINS: pages served from this machine only
}

// parseOrigins reads CORS_ALLOWED_ORIGINS: empty or "*" allows any origin; otherwise a
// comma-separated list of exact origins, each as a browser sends it in Origin, for an origin
// listed any other way would silently never match.
func parseOrigins(v string) (corsPolicy, error) {
	v = strings.TrimSpace(v)
	if v == "" || v == "*" {
		return corsPolicy{}, nil
	}
	origins := map[string]bool{}
	for _, o := range strings.Split(v, ",") {
		o = strings.TrimSpace(o)
		if problem := originProblem(o); problem != "" {
			return corsPolicy{}, &configError{"CORS_ALLOWED_ORIGINS", fmt.Sprintf("has %.100q, which %s", o, problem),
				"list origins exactly as a browser sends them, scheme://host[:port] (no path, no trailing slash, " +
					"no :443 or :80), comma-separated, or use *"}
		}
		origins[strings.ToLower(o)] = true // browsers send scheme and host in lower case
	}
	return corsPolicy{origins: origins}, nil
}

// originProblem says why o is not an origin a browser sends, or "" when it is one.
func originProblem(o string) string {
	u, err := url.Parse(o)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil:
		return "is not an http or https origin"
	case !strings.EqualFold(o, u.Scheme+"://"+u.Host): // anything after scheme://host[:port]
		return "has a path, a query or a trailing slash, which an Origin header never has"
	case strings.HasSuffix(u.Host, ":") || u.Port() == defaultPorts[u.Scheme]:
		return "names the default port or an empty one, which an Origin header never does"
	}
	return ""
}

var defaultPorts = map[string]string{"https": "443", "http": "80"}

// setHeaders sets what every answer carries, errors and preflights included, so that a refusal
// reaches browser code as itself rather than as a CORS failure. It returns the request's Origin
// when the policy refuses it (the answer then carries no CORS headers), for the log.
func (p corsPolicy) setHeaders(w http.ResponseWriter, r *http.Request) (refusedOrigin string) {
	header := w.Header()
	header.Set("Content-Type", "application/json; charset=utf-8")
	header.Set("Cache-Control", "no-store")
	header.Set("X-Content-Type-Options", "nosniff")
	header.Set("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" {
		return ""
	}
	if !p.allows(origin) {
		return origin
	}
	// Echo the origin rather than "*": it works whether or not the caller sends credentials.
	header.Set("Access-Control-Allow-Origin", origin)
	header.Set("Access-Control-Expose-Headers", "Retry-After")
	if r.Method == http.MethodOptions {
		// As onCall's cors middleware: allow the headers asked for, whatever SDKs, tracing and
		// monitoring agents add. No cookies are read: the bearer token is the credential.
		header.Set("Vary", "Origin, Access-Control-Request-Headers")
		header.Set("Access-Control-Allow-Methods", allowedMethods)
		if requested := requestedHeaders(r.Header); requested != "" {
			header.Set("Access-Control-Allow-Headers", requested)
		}
		header.Set("Access-Control-Max-Age", "3600")
	}
	return ""
}

// requestedHeaders lists the header names a preflight's Access-Control-Request-Headers asks for
// (repeated headers read as one list, as Node joins them), keeping only valid names and at most
// maxAllowedHeaders bytes of them, so the echo is never more than a list of header names.
func requestedHeaders(header http.Header) string {
	var names []string
	size := 0
	for name := range listValues(header, "Access-Control-Request-Headers") {
		if !httpguts.ValidHeaderFieldName(name) {
			continue
		}
		if size += len(name) + len(", "); size > maxAllowedHeaders {
			break
		}
		names = append(names, name)
	}
	return strings.Join(names, ", ")
}

// allows reports whether a browser page from origin may read the answers.
func (p corsPolicy) allows(origin string) bool {
	if p.loopbackOnly {
		return isLoopbackOrigin(origin)
	}
	return p.origins == nil || p.origins[origin]
}
