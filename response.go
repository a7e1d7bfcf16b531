package proficienthmac

import (
	"encoding/json"
	"net/http"
)

// An apiError is a refusal, in the callable protocol's terms: an HTTP status, a canonical
// status, a stable reason code for the logs and a plain sentence for the caller. cause is for
// the logs only and never reaches the caller. Every refusal is made by one of the constructors
// below.
type apiError struct {
	code      int
	status    string
	reason    string
	message   string
	challenge string // WWW-Authenticate, for a 401
	cause     error
}

func badRequest(reason, message string) *apiError {
	return &apiError{code: http.StatusBadRequest, status: "INVALID_ARGUMENT", reason: reason, message: message}
}

// unauthenticated refuses a token that was sent and is not good: RFC 6750's invalid_token tells
// the client to get a fresh one.
func unauthenticated(reason, message string, cause error) *apiError {
	return &apiError{code: http.StatusUnauthorized, status: "UNAUTHENTICATED", reason: reason, message: message,
		challenge: `Bearer error="invalid_token"`, cause: cause}
}

// credentialMissing refuses a request without the credential asked for (an ID token, or an App
// Check token where one is required): RFC 6750's challenge with no error code.
func credentialMissing(reason, message string) *apiError {
	return &apiError{code: http.StatusUnauthorized, status: "UNAUTHENTICATED", reason: reason, message: message,
		challenge: "Bearer"}
}

// appCheckRefused refuses a bad App Check token sent with a good ID token. Its challenge has no
// invalid_token: a fresh ID token would not mend it.
func appCheckRefused(reason, message string, cause error) *apiError {
	return &apiError{code: http.StatusUnauthorized, status: "UNAUTHENTICATED", reason: reason, message: message,
		challenge: "Bearer", cause: cause}
}

func permissionDenied(reason, message string, cause error) *apiError {
	return &apiError{code: http.StatusForbidden, status: "PERMISSION_DENIED", reason: reason, message: message, cause: cause}
}

// unavailable is an outage of something the function needs: the caller should retry.
func unavailable(reason, message string, cause error) *apiError {
	return &apiError{code: http.StatusServiceUnavailable, status: "UNAVAILABLE", reason: reason, message: message, cause: cause}
}

// internalError is a fault the operator must fix, such as missing IAM permissions.
func internalError(reason, message string, cause error) *apiError {
	return &apiError{code: http.StatusInternalServerError, status: "INTERNAL", reason: reason, message: message, cause: cause}
}

var (
	errMethodNotAllowed = &apiError{code: http.StatusMethodNotAllowed, status: "UNIMPLEMENTED",
		reason: "method_not_allowed", message: "Use POST (or GET) to get an HMAC."}
	errBodyTooLarge = &apiError{code: http.StatusRequestEntityTooLarge, status: "INVALID_ARGUMENT",
		reason: "body_too_large", message: "The request body is larger than 64 KiB."}
)

// retryAfterSeconds is what a 503 asks the caller to wait.
const retryAfterSeconds = "5"

// A protocol is how the caller speaks (REST, callable or streaming callable), and so how the
// answer is wrapped.
type protocol uint8

const (
	protocolREST     protocol = iota // {"hmac":…,"userExternalId":…}
	protocolCallable                 // {"result":{…}}, what httpsCallable expects
	protocolStream                   // a callable asking for server-sent events: .stream() in the SDKs
)

func (p protocol) String() string {
	switch p {
	case protocolCallable:
		return "callable"
	case protocolStream:
		return "stream"
	}
	return "rest"
}

// hmacResult is the answer, in every protocol.
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

func writeResult(w http.ResponseWriter, p protocol, res hmacResult) {
	switch p {
	case protocolStream:
		writeEvent(w, callableResult{res})
	case protocolCallable:
		writeJSON(w, http.StatusOK, callableResult{res})
	default:
		writeJSON(w, http.StatusOK, res)
	}
}

func writeError(w http.ResponseWriter, p protocol, e *apiError) {
	body := errorBody{errorDetail{e.status, e.message}}
	if p == protocolStream {
		writeEvent(w, body) // onCall answers a stream 200 and puts the error in it
		return
	}
	switch {
	case e.challenge != "":
		w.Header().Set("WWW-Authenticate", e.challenge)
	case e.code == http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", retryAfterSeconds)
	case e.code == http.StatusMethodNotAllowed:
		w.Header().Set("Allow", allowedMethods)
	}
	writeJSON(w, e.code, body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	body, _ := json.Marshal(v) // plain structs of strings: cannot fail
	w.WriteHeader(code)
	w.Write(append(body, '\n'))
}

// writeEvent answers a streaming callable as onCall does: 200 and one server-sent event. The
// SDKs read only "data: " lines; text/event-stream is the type such a body has (onCall sets
// none), and it keeps proxies from buffering it.
func writeEvent(w http.ResponseWriter, v any) {
	body, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	w.Write(append(append([]byte("data: "), body...), '\n', '\n'))
}
