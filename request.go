package proficienthmac

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
)

// maxBody is the largest body accepted; a real request is well under 1 KiB.
const maxBody = 64 << 10

// A form is how the caller speaks, and so how the answer is wrapped.
type form uint8

const (
	formREST     form = iota // {"hmac":…,"userExternalId":…}
	formCallable             // {"result":{…}}, what httpsCallable expects
)

func (f form) String() string {
	if f == formCallable {
		return "callable"
	}
	return "rest"
}

// A hmacRequest is what the body asked for.
type hmacRequest struct {
	form      form
	claimedID *string // userExternalId, when the body gave one as a string
}

// parseRequest judges the request's shape (method, size, body) before any token is looked at,
// as callable functions do.
func parseRequest(r *http.Request) (hmacRequest, *apiError) {
	var req hmacRequest
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return req, &apiError{http.StatusMethodNotAllowed, "UNIMPLEMENTED", "method_not_allowed",
			"Use POST (or GET) to get an HMAC.", nil}
	}
	if r.ContentLength > maxBody {
		return req, errBodyTooLarge
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return req, badRequest("body_unreadable", "The request body could not be read.")
	}
	if len(body) > maxBody {
		return req, errBodyTooLarge
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return req, nil
	}
	if mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mediaType != "application/json" {
		return req, badRequest("bad_content_type", "Send the body as JSON with Content-Type: application/json.")
	}
	var object map[string]json.RawMessage
	if err := json.Unmarshal(body, &object); err != nil || object == nil {
		return req, badRequest("bad_json", "The body must be a JSON object.")
	}

	if data, ok := object["data"]; ok {
		if r.Method != http.MethodPost {
			return req, badRequest("callable_not_post", "Callable requests ({\"data\": …}) must use POST.")
		}
		if len(object) != 1 {
			return req, badRequest("callable_extra_keys", "A callable request body must be exactly {\"data\": …}.")
		}
		req.form = formCallable
		object = nil
		if err := json.Unmarshal(data, &object); err != nil {
			return req, badRequest("bad_callable_data", "The callable data must be null or a JSON object.")
		}
	}
	req.claimedID, err = claimedExternalID(object["userExternalId"])
	if err != nil {
		return req, badRequest("bad_external_id", "userExternalId must be a string or null.")
	}
	return req, nil
}

// claimedExternalID reads an optional userExternalId: absent or null is no claim.
func claimedExternalID(raw json.RawMessage) (*string, error) {
	if raw == nil || string(raw) == "null" {
		return nil, nil
	}
	var id string
	if err := json.Unmarshal(raw, &id); err != nil {
		return nil, err
	}
	return &id, nil
}

var errBodyTooLarge = &apiError{http.StatusRequestEntityTooLarge, "INVALID_ARGUMENT", "body_too_large",
	"The request body is larger than 64 KiB.", nil}

func badRequest(reason, message string) *apiError {
	return &apiError{http.StatusBadRequest, "INVALID_ARGUMENT", reason, message, nil}
}
