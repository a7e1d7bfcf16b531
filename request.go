package proficienthmac

import (
	"bytes"
	"encoding/json"
	"io"
	"iter"
	"net/http"
	"strings"
	"sync"
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
	buf := bodyBuffers.Get().(*bytes.Buffer)
	defer bodyBuffers.Put(buf)
	buf.Reset()
	if r.Body != nil { // always set by net/http's server; not always by other callers
		if _, err := buf.ReadFrom(&io.LimitedReader{R: r.Body, N: maxBody + 1}); err != nil {
			return req, badRequest("body_unreadable", "The request body could not be read.")
		}
	}
	body := buf.Bytes() // valid until buf goes back to the pool: decoding copies what it keeps
	if len(body) > maxBody {
		return req, errBodyTooLarge
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return req, nil
	}
	if !isJSON(r.Header.Get("Content-Type")) {
		return req, badRequest("bad_content_type", "Send the body as JSON with Content-Type: application/json.")
	}
	if !json.Valid(body) || firstByte(body) != '{' {
		return req, badRequest("bad_json", "The body must be a JSON object.")
	}

	var data, claim []byte
	keys := 0
	for key, value := range members(body) {
		keys++
		switch {
		case keyIs(key, "data"):
			data = value
		case keyIs(key, "userExternalId"):
			claim = value
		}
	}
	if data != nil {
		if r.Method != http.MethodPost {
			return req, badRequest("callable_not_post", "Callable requests ({\"data\": …}) must use POST.")
		}
		if keys != 1 {
			return req, badRequest("callable_extra_keys", "A callable request body must be exactly {\"data\": …}.")
		}
		req.form = formCallable
		claim = nil
		switch firstByte(data) {
		case 'n': // null
		case '{':
			for key, value := range members(data) {
				if keyIs(key, "userExternalId") {
					claim = value
				}
			}
		default:
			return req, badRequest("bad_callable_data", "The callable data must be null or a JSON object.")
		}
	}
	var err error
	if req.claimedID, err = claimedExternalID(claim); err != nil {
		return req, badRequest("bad_external_id", "userExternalId must be a string or null.")
	}
	return req, nil
}

// bodyBuffers recycles request bodies' buffers across requests.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// isJSON reports whether a Content-Type is application/json, parameters (charset) aside.
func isJSON(contentType string) bool {
	mediaType, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(mediaType), "application/json")
}

// claimedExternalID reads an optional userExternalId: absent or null is no claim.
func claimedExternalID(raw []byte) (*string, error) {
	if raw == nil || firstByte(raw) == 'n' {
		return nil, nil
	}
	var id string
	if err := json.Unmarshal(raw, &id); err != nil {
		return nil, err
	}
	return &id, nil
}

// members yields the raw key (quotes included, escapes kept) and raw value of each member of
// a JSON object that json.Valid has accepted. With keyIs, keys are matched exactly, as the
// callable protocol's {"data": …} is, where encoding/json would match struct fields in any
// case; and nothing is allocated, where decoding into a map costs a dozen allocations a request.
func members(object []byte) iter.Seq2[[]byte, []byte] {
	return func(yield func(key, value []byte) bool) {
		i := skipSpace(object, skipSpace(object, 0)+1) // past '{' and any white space around it
		for i < len(object) && object[i] == '"' {
			keyEnd := skipValue(object, i)
			valueStart := skipSpace(object, skipSpace(object, keyEnd)+1) // past ':'
			valueEnd := skipValue(object, valueStart)
			if !yield(object[i:keyEnd], object[valueStart:valueEnd]) {
				return
			}
			i = skipSpace(object, skipSpace(object, valueEnd)+1) // past ',' (or '}', which ends the loop)
		}
	}
}

// keyIs reports whether a raw JSON key (quotes included) names name, exactly, as
// encoding/json reads it: escapes ("d\u0061ta") are decoded, case is not folded.
func keyIs(raw []byte, name string) bool {
	if bytes.IndexByte(raw, '\\') < 0 {
		return len(raw) == len(name)+2 && string(raw[1:len(raw)-1]) == name
	}
	var key string
	return json.Unmarshal(raw, &key) == nil && key == name
}

// skipValue returns the end of the valid JSON value starting at b[i].
func skipValue(b []byte, i int) int {
	depth, inString := 0, false
	for j := i; j < len(b); j++ {
		c := b[j]
		switch {
		case inString:
			if c == '\\' {
				j++
			} else if c == '"' {
				inString = false
				if depth == 0 {
					return j + 1
				}
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth == 0 { // the end of the enclosing object ends a number or literal
				return j
			}
			if depth--; depth == 0 {
				return j + 1
			}
		case depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return j
		}
	}
	return len(b)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// firstByte is the first byte of a JSON text after white space, or 0.
func firstByte(b []byte) byte {
	if i := skipSpace(b, 0); i < len(b) {
		return b[i]
	}
	return 0
}

var errBodyTooLarge = &apiError{http.StatusRequestEntityTooLarge, "INVALID_ARGUMENT", "body_too_large",
	"The request body is larger than 64 KiB.", nil}

func badRequest(reason, message string) *apiError {
	return &apiError{http.StatusBadRequest, "INVALID_ARGUMENT", reason, message, nil}
}
