package proficienthmac

import (
	"bytes"
	"errors"
	"io"
	"iter"
	"mime"
	"net/http"
	"net/textproto"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// maxBody is the largest body accepted; a real request is well under 1 KiB.
const maxBody = 64 << 10

// A hmacRequest is what the body asked for.
type hmacRequest struct {
	protocol  protocol
	claimedID *string // userExternalId, when the body gave one as a string
}

// parseRequest judges the request's shape (method, size, body) before any token is looked at,
// as callable functions do. The body is read by encoding/json/v2's semantics: names match
// exactly (escapes decoded, case kept), and a name given twice in any object is refused, so a
// duplicate userExternalId can never be settled by "the last one wins".
func parseRequest(r *http.Request) (hmacRequest, *apiError) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return hmacRequest{}, errMethodNotAllowed
	}
	body, apiErr := readBody(r)
	if apiErr != nil || len(bytes.TrimSpace(body)) == 0 {
		return hmacRequest{}, apiErr
	}
	// onCall matches this header exactly, as Node reads it (repeated headers joined with ", "),
	// and from here on streams its refusals too.
	req := hmacRequest{protocol: protocolREST}
	if r.Method == http.MethodPost && strings.Join(r.Header.Values("Accept"), ", ") == "text/event-stream" {
		req.protocol = protocolStream
	}
	if apiErr := checkContentHeaders(r.Header); apiErr != nil {
		return req, apiErr
	}
	fields, apiErr := decodeBody(body)
	if apiErr != nil {
		return req, apiErr
	}
	if fields.Data == nil { // a REST body: answered as REST, whatever it accepts
		claimed, apiErr := claimedExternalID(fields.UserExternalID)
		return hmacRequest{protocol: protocolREST, claimedID: claimed}, apiErr
	}
	return callableRequest(r.Method, req.protocol, fields)
}

// callableRequest reads a callable body, {"data": …}: only on POST, with nothing beside data.
// Until it is known to be one, a refusal goes out in protocol p.
func callableRequest(method string, p protocol, fields bodyFields) (hmacRequest, *apiError) {
	req := hmacRequest{protocol: p}
	if method != http.MethodPost {
		return req, badRequest("callable_not_post", `Callable requests ({"data": …}) must use POST.`)
	}
	if fields.UserExternalID != nil || fields.Others != nil {
		return req, badRequest("callable_extra_keys", `A callable request body must be exactly {"data": …}.`)
	}
	if p != protocolStream {
		req.protocol = protocolCallable
	}
	var apiErr *apiError
	req.claimedID, apiErr = callableClaim(fields.Data)
	return req, apiErr
}

// jsLike reads strings as JavaScript does: an escaped lone surrogate ("\ud83d", which
// JSON.stringify writes for a string cut inside an emoji) is accepted, as U+FFFD. Raw invalid
// UTF-8 is refused before this, in decodeBody.
var jsLike = jsontext.AllowInvalidUTF8(true)

// The SDKs' wrappers for 64-bit integers, which onCall decodes to numbers.
var integerTypes = map[string]bool{
	"type.googleapis.com/google.protobuf.Int64Value":  true,
	"type.googleapis.com/google.protobuf.UInt64Value": true,
}

// callableClaim reads the userExternalId in a callable's data, which may be null (no argument).
func callableClaim(data jsontext.Value) (*string, *apiError) {
	errData := badRequest("bad_callable_data", "The callable data must be null or a JSON object.")
	switch data.Kind() {
	case 'n':
		return nil, nil
	case '{':
		// Already checked whole with the body, so this decoding cannot fail; other members
		// are the caller's own and are ignored.
		var inner struct {
			UserExternalID jsontext.Value `json:"userExternalId"`
			Type           jsontext.Value `json:"@type"`
		}
		json.Unmarshal(data, &inner, jsLike)
		var wrapper string
		if json.Unmarshal(inner.Type, &wrapper, jsLike) == nil && integerTypes[wrapper] {
			return nil, errData // a Long or Int64 argument from the Android or iOS SDK: a number
		}
		return claimedExternalID(inner.UserExternalID)
	}
	return nil, errData
}

// notAUID stands for a claimed ID holding a lone surrogate. JavaScript compares such a string
// unequal to every UID, which the Admin SDK always decodes to valid UTF-8; json v2 reads the
// surrogate as U+FFFD, which a UID may hold, so the claim becomes a string no UID can equal.
const notAUID = "\xff"

// claimedExternalID reads an optional userExternalId: absent or null is no claim.
func claimedExternalID(raw jsontext.Value) (*string, *apiError) {
	if raw == nil || raw.Kind() == 'n' {
		return nil, nil
	}
	var id string
	if json.Unmarshal(raw, &id, jsLike) != nil {
		return nil, badRequest("bad_external_id", "userExternalId must be a string or null.")
	}
	if !raw.IsValid() { // valid UTF-8 (checked with the body), so an escaped lone surrogate
		id = notAUID
	}
	return &id, nil
}

// readBody reads at most maxBody bytes of the request's body.
func readBody(r *http.Request) ([]byte, *apiError) {
	if r.ContentLength > maxBody {
		return nil, errBodyTooLarge
	}
	if r.Body == nil { // always set by net/http's server; not always by other callers
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, badRequest("body_unreadable", "The request body could not be read.")
	}
	if len(body) > maxBody {
		return nil, errBodyTooLarge
	}
	return body, nil
}

// bodyFields are the members of a body that matter, each left as raw JSON; nil when absent.
type bodyFields struct {
	Data           jsontext.Value `json:"data"`           // a callable's argument
	UserExternalID jsontext.Value `json:"userExternalId"` // a REST body's claim
	Others         jsontext.Value `json:",embed"`         // any other member, as an object
}

// decodeBody decodes a JSON object body.
func decodeBody(body []byte) (bodyFields, *apiError) {
	var fields bodyFields
	if jsontext.Value(body).Kind() != '{' {
		return fields, badRequest("bad_json", "The body must be a JSON object.")
	}
	if !utf8.Valid(body) {
		return fields, badRequest("bad_json", "The body is not valid JSON: it is not UTF-8.")
	}
	if err := json.Unmarshal(body, &fields, jsLike); err != nil {
		if errors.Is(err, jsontext.ErrDuplicateName) {
			return fields, badRequest("duplicate_name", "The body names a member twice in one object: send each name once.")
		}
		return fields, badRequest("bad_json", "The body is not valid JSON.")
	}
	return fields, nil
}

// checkContentHeaders refuses a body that is not declared as plain JSON.
func checkContentHeaders(header http.Header) *apiError {
	if !isJSON(header.Get("Content-Type")) {
		return badRequest("bad_content_type", "Send the body as UTF-8 JSON with Content-Type: application/json.")
	}
	if encoding := header.Get("Content-Encoding"); encoding != "" && !strings.EqualFold(encoding, "identity") {
		return badRequest("bad_content_encoding", "Send the body uncompressed, without Content-Encoding.")
	}
	return nil
}

// isJSON reports whether a Content-Type is application/json, read by RFC 2045's grammar (a
// malformed parameter refuses it, as onCall's body parser does) in UTF-8, the only charset read.
func isJSON(contentType string) bool {
	mediaType, params, err := mime.ParseMediaType(contentType)
	charset, named := params["charset"]
	return err == nil && mediaType == "application/json" && (!named || strings.EqualFold(charset, "utf-8"))
}

// listValues yields the items of a comma-separated header, every line of it read as one list (as
// Node joins them), each trimmed of HTTP's optional whitespace. One at a time: a header may be
// as long as the server allows, and a caller may stop early.
func listValues(h http.Header, name string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, line := range h.Values(name) {
			for item := range strings.SplitSeq(line, ",") {
				if !yield(textproto.TrimString(item)) {
					return
				}
			}
		}
	}
}
