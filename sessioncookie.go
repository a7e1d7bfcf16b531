package proficienthmac

import "strings"

// sessionCookieIssuer begins the iss claim of Firebase session cookies (createSessionCookie),
// which servers hold in place of the user's ID token and sometimes forward as one.
const sessionCookieIssuer = "https://session.firebase.google.com/"

// isSessionCookie reports whether a token that failed verification is a Firebase session cookie,
// read from its unverified payload: it only chooses the message of a refusal.
func isSessionCookie(token string) bool {
	var claims struct {
		Issuer string `json:"iss"`
	}
	return decodePayload(token, &claims) == nil && strings.HasPrefix(claims.Issuer, sessionCookieIssuer)
}

// sessionCookieRefused says what was sent and what to send instead: signing in again, which the
// invalid-token message suggests, never mends it.
func sessionCookieRefused(cause error) *apiError {
	return unauthenticated("session_cookie",
		"This is a Firebase session cookie, not an ID token: send the signed-in user's ID token "+
			"(getIdToken() in the client) as Authorization: Bearer <token>.", cause)
}
