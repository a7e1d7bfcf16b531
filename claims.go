package proficienthmac

import (
	"encoding/base64"
	jsonv1 "encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"firebase.google.com/go/v4/auth"
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// The claims of an ID token are read once, strictly, as Google signed them, and every decision
// about the caller is taken from that reading.
//
// Why not the Admin SDK's reading: it decodes the payload with encoding/json (v1), which matches
// member names to its Token fields without regard to case, Unicode folding included (ſ is s, K
// is k), and lets the last match win. A custom claim "Aud" or "Exp" after the real one would be
// what the SDK checked, and the project's owner sets custom claims. So names are exact here, a
// member the SDK would confuse with another refuses the token, and what the SDK checked must
// agree with what this reading finds. Strings are read as JavaScript reads them (jsLike): a
// display name cut inside an emoji is a valid claim, as it is to onCall.

// claims are what the function decides from: who the caller is, until when, and how they signed in.
type claims struct {
	uid            string    // sub, which Firebase Auth always makes equal to user_id
	expires        time.Time // exp, read with no leeway
	signInProvider string    // firebase.sign_in_provider
	tenant         string    // firebase.tenant
}

// payloadClaims are the claims read by their exact names; Others holds every other member,
// which must not be a name the SDK would take for one of these.
type payloadClaims struct {
	Aud      string                    `json:"aud"`
	Iss      string                    `json:"iss"`
	Exp      int64                     `json:"exp"`
	Iat      int64                     `json:"iat"`
	AuthTime int64                     `json:"auth_time"`
	Sub      string                    `json:"sub"`
	UserID   string                    `json:"user_id"`
	Firebase firebaseClaims            `json:"firebase"`
	Others   map[string]jsontext.Value `json:",embed"`
}

type firebaseClaims struct {
	SignInProvider string                    `json:"sign_in_provider"`
	Tenant         string                    `json:"tenant"`
	Identities     jsontext.Value            `json:"identities"`
	Others         map[string]jsontext.Value `json:",embed"`
}

var (
	payloadNames  = []string{"aud", "iss", "exp", "iat", "auth_time", "sub", "user_id", "firebase"}
	firebaseNames = []string{"sign_in_provider", "tenant", "identities"}
)

// An ambiguousClaimError is a token the Admin SDK could have read otherwise than as signed.
type ambiguousClaimError struct {
	name, problem string
}

func (e *ambiguousClaimError) Error() string { return fmt.Sprintf("claim %.64q %s", e.name, e.problem) }

// readClaims reads the payload of a token the Admin SDK verified; sdk is what the SDK read.
func readClaims(idToken string, sdk *auth.Token) (claims, error) {
	var p payloadClaims
	if err := decodePayload(idToken, &p); err != nil {
		return claims{}, fmt.Errorf("claims read strictly: %w", err)
	}
	if err := distinctNames(p.Others, payloadNames); err != nil {
		return claims{}, err
	}
	if err := distinctNames(p.Firebase.Others, firebaseNames); err != nil {
		return claims{}, err
	}
	for _, c := range [...]struct {
		name     string
		agree    bool
		expected any
	}{
		{"aud", p.Aud == sdk.Audience, sdk.Audience},
		{"iss", p.Iss == sdk.Issuer, sdk.Issuer},
		{"exp", p.Exp == sdk.Expires, sdk.Expires},
		{"iat", p.Iat == sdk.IssuedAt, sdk.IssuedAt},
		{"auth_time", p.AuthTime == sdk.AuthTime, sdk.AuthTime},
		{"sub", p.Sub == sdk.UID && p.Sub == sdk.Subject, sdk.UID},
		{"user_id", p.UserID == p.Sub, p.Sub},
		{"firebase.sign_in_provider", p.Firebase.SignInProvider == sdk.Firebase.SignInProvider, sdk.Firebase.SignInProvider},
		{"firebase.tenant", p.Firebase.Tenant == sdk.Firebase.Tenant, sdk.Firebase.Tenant},
	} {
		if !c.agree {
			return claims{}, &ambiguousClaimError{c.name, fmt.Sprintf("is not the %.64v the Admin SDK read", c.expected)}
		}
	}
	return claims{uid: p.Sub, expires: time.Unix(p.Exp, 0), signInProvider: p.Firebase.SignInProvider, tenant: p.Firebase.Tenant}, nil
}

// distinctNames refuses a member whose name encoding/json v1 would match to one of known, or to
// another member: it matches names with strings.EqualFold. Names are taken in order, so that the
// refusal always names the same one.
func distinctNames(others map[string]jsontext.Value, known []string) error {
	folded := make(map[string]string, len(others))
	for _, name := range slices.Sorted(maps.Keys(others)) {
		for _, k := range known {
			if strings.EqualFold(name, k) {
				return &ambiguousClaimError{name, fmt.Sprintf("is %q to the Admin SDK", k)}
			}
		}
		key := strings.ToUpper(strings.ToLower(name)) // EqualFold's equivalence, as encoding/json folds
		if other, seen := folded[key]; seen {
			return &ambiguousClaimError{name, fmt.Sprintf("and %.64q are one name to the Admin SDK", other)}
		}
		folded[key] = name
	}
	return nil
}

// An undecodableClaimError is a claim the Admin SDK fails to decode, so that it refuses every
// token of the user: a custom claim "uid" holding a number, say.
type undecodableClaimError struct {
	name  string // as in the token
	field string // the SDK's claim it is read as
	holds string // its JSON kind
	wants string // the SDK's type
}

func (e *undecodableClaimError) Error() string {
	return fmt.Sprintf("claim %.64q holds %s; the Admin SDK reads it as %s, %s", e.name, e.holds, e.field, e.wants)
}

// undecodableClaim finds a member of a token's payload that the Admin SDK cannot decode into
// its Token (encoding/json v1, names folded), or returns nil. The token is unverified here: this
// only chooses what a refusal says.
func undecodableClaim(idToken string) *undecodableClaimError {
	var payload map[string]jsontext.Value
	if decodePayload(idToken, &payload) != nil {
		return nil
	}
	return undecodableMember(payload, reflect.TypeFor[auth.Token](), "")
}

func undecodableMember(members map[string]jsontext.Value, t reflect.Type, prefix string) *undecodableClaimError {
	for name, value := range members {
		for i := range t.NumField() {
			field := t.Field(i)
			tag, _, _ := strings.Cut(field.Tag.Get("json"), ",")
			if tag == "" || tag == "-" || !strings.EqualFold(name, tag) {
				continue
			}
			err := jsonv1.Unmarshal(value, reflect.New(field.Type).Interface())
			var inner map[string]jsontext.Value
			if err != nil && field.Type.Kind() == reflect.Struct && json.Unmarshal(value, &inner, jsLike) == nil {
				if e := undecodableMember(inner, field.Type, prefix+name+"."); e != nil {
					return e
				}
			}
			if err != nil {
				return &undecodableClaimError{name: prefix + name, field: prefix + tag, holds: jsonKind(value), wants: goTypeInJSON(field.Type)}
			}
		}
	}
	return nil
}

func jsonKind(v jsontext.Value) string {
	switch v.Kind() {
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 't', 'f':
		return "a boolean"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "null"
}

func goTypeInJSON(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int64:
		return "a whole number"
	}
	return "an object"
}

// claimsRefused is the answer to a token whose claims cannot be read as Google signed them.
func claimsRefused(err error) *apiError {
	var ambiguous *ambiguousClaimError
	if errors.As(err, &ambiguous) {
		return unauthenticated("claims_ambiguous", fmt.Sprintf("The ID token's claims are ambiguous (%s): it cannot be accepted.", ambiguous), err)
	}
	return unauthenticated("claims_ambiguous", "The ID token's claims cannot be read strictly (a name given twice?): it cannot be accepted.", err)
}

// claimUndecodable says which claim keeps every token of the user from being read, and the fix:
// signing in again, which "invalid token" suggests, never mends it.
func claimUndecodable(e *undecodableClaimError) *apiError {
	return unauthenticated("claim_undecodable", fmt.Sprintf(
		"The ID token's claim %.64q holds %s, and the Go Admin SDK reads it as its own %q claim, %s (it matches names without regard to case): "+
			"store that custom claim as %s or rename it, then get a fresh ID token (getIdToken(true)).",
		e.name, e.holds, e.field, e.wants, e.wants), e)
}

// decodePayload decodes a JWT's payload with json v2: exact names, no duplicates, strings as
// JavaScript reads them. It does not verify the token.
func decodePayload(jwt string, v any) error {
	_, rest, _ := strings.Cut(jwt, ".")
	payload, _, _ := strings.Cut(rest, ".")
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v, jsLike)
}
