package proficienthmac

import (
	"encoding/json"
	"net/http"
	"strings"
)

// An apiError is a refusal, in the callable protocol's terms: an HTTP status, a canonical
// status, a stable reason code for the logs and a plain sentence for the caller. cause is for
// the logs only and never reaches the caller.
type apiError struct {
	code    int
	status  string
	reason  string
	message string
	cause   error
}

// retryAfterSeconds is what a 503 asks the caller to wait.
const retryAfterSeconds = "5"

func unauthenticated(reason, message string, cause error) *apiError {
	return &apiError{http.StatusUnauthorized, "UNAUTHENTICATED", reason, message, cause}
}

func unavailable(reason, message string, cause error) *apiError {
	return &apiError{http.StatusServiceUnavailable, "UNAVAILABLE", reason, message, cause}
}

// hmacResult is the answer, in both forms.
type hmacResult struct {
	HMAC           string `json:"hmac"`
	UserExternalID string `json:"userExternalId"`
}

type callableResult struct {
	Result hmacResult `json:"result"`
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func writeResult(w http.ResponseWriter, f form, res hmacResult) {
	if f == formCallable {
		writeJSON(w, http.StatusOK, callableResult{res})
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func writeError(w http.ResponseWriter, e *apiError) {
	switch e.code {
	case http.StatusUnauthorized:
		// RFC 6750: no error code when no credentials were sent at all, nor when the bearer
		// token was fine and App Check refused.
		if e.reason == "no_token" || strings.HasPrefix(e.reason, "app_check_") {
			w.Header().Set("WWW-Authenticate", "Bearer")
		} else {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		}
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", retryAfterSeconds)
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", allowedMethods)
	}
	writeJSON(w, e.code, errorBody{errorDetail{e.status, e.message}})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	body, _ := json.Marshal(v) // plain structs of strings: cannot fail
	w.WriteHeader(code)
	w.Write(append(body, '\n'))
}

const (
	allowedMethods = "GET, POST, OPTIONS"
	allowedHeaders = "Authorization, Content-Type, X-Firebase-AppCheck, Firebase-Instance-ID-Token"
)

// The values of the headers every answer carries, made once: setting a header with Set
// allocates its value slice on every request. They are never modified in place.
var (
	jsonContentType  = []string{"application/json; charset=utf-8"}
	noStore          = []string{"no-store"}
	nosniff          = []string{"nosniff"}
	varyOrigin       = []string{"Origin"}
	exposeRetryAfter = []string{"Retry-After"}
	preflightMethods = []string{allowedMethods}
	preflightHeaders = []string{allowedHeaders}
	preflightMaxAge  = []string{"3600"}
)

// setCommonHeaders sets what every answer carries, errors and preflights included, so that a
// refusal reaches browser code as itself rather than as a CORS failure.
func (h *handler) setCommonHeaders(w http.ResponseWriter, r *http.Request) {
	header := w.Header()
	header["Content-Type"] = jsonContentType
	header["Cache-Control"] = noStore
	header["X-Content-Type-Options"] = nosniff
	header["Vary"] = varyOrigin
	origin := r.Header.Get("Origin")
	if origin == "" || (h.corsOrigins != nil && !h.corsOrigins[origin]) {
		return
	}
	// Echo the origin rather than "*": it works whether or not the caller sends credentials.
	header.Set("Access-Control-Allow-Origin", origin)
	header["Access-Control-Expose-Headers"] = exposeRetryAfter
	if r.Method == http.MethodOptions {
		header["Access-Control-Allow-Methods"] = preflightMethods
		header["Access-Control-Allow-Headers"] = preflightHeaders
		header["Access-Control-Max-Age"] = preflightMaxAge
	}
}
