package proficienthmac

// reasonCodes are the codes a request's log line gives as its reason, each with what it means:
// a contract with operators, who query them (docs/logs.md lists them, and TestReasonCodes holds
// this list, the code and that page to each other).
var reasonCodes = []struct{ code, meaning string }{
	// Answered.
	{"ok", "an HMAC was given (the INFO line that is the audit trail)"},
	{"preflight", "a CORS preflight, answered 204"},
	{"origin_refused", "a preflight from an origin CORS_ALLOWED_ORIGINS does not allow: no CORS headers"},
	// The request's shape (400, 405, 413), judged before the token.
	{"method_not_allowed", "a method other than GET, POST or OPTIONS"},
	{"body_too_large", "a body over 64 KiB"},
	{"body_unreadable", "the body could not be read (the client stopped sending it)"},
	{"bad_content_type", "a body without Content-Type: application/json (UTF-8)"},
	{"bad_content_encoding", "a compressed body"},
	{"bad_json", "a body that is not a JSON object, or not UTF-8"},
	{"duplicate_name", "a JSON object that names a member twice"},
	{"callable_not_post", "a callable body ({\"data\": …}) on a GET"},
	{"callable_extra_keys", "a callable body with members besides data"},
	{"bad_callable_data", "callable data that is neither null nor an object"},
	{"bad_external_id", "a userExternalId that is neither a string nor null"},
	// The ID token (401, 403).
	{"no_token", "no Authorization: Bearer header"},
	{"token_too_large", "an ID token over 16 KiB, not read"},
	{"token_invalid", "a token the Admin SDK refused: not signed by Google, malformed, or for a user the Auth emulator does not know"},
	{"token_expired", "an ID token past its exp: the client should get a fresh one"},
	{"token_revoked", "a revoked token (CHECK_REVOKED)"},
	{"wrong_project", "a token for another Firebase project (the message names both)"},
	{"wrong_tenant", "another Identity Platform tenant's token, or a tenant's without FIREBASE_TENANT_ID"},
	{"session_cookie", "a Firebase session cookie sent as the ID token"},
	{"claims_ambiguous", "claims the Admin SDK could read otherwise than as signed (names equal but for case)"},
	{"claim_undecodable", "a custom claim the Go Admin SDK cannot decode (uid holding a number): the message names it"},
	{"user_disabled", "a disabled user (CHECK_REVOKED), 403"},
	{"emulator_host_refused", "against the Auth emulator, a request from or to another machine, 403"},
	// App Check (401).
	{"app_check_missing", "no X-Firebase-AppCheck while ENFORCE_APP_CHECK=true"},
	{"app_check_too_large", "an App Check token over 4 KiB, not read (enforced)"},
	{"app_check_invalid", "an App Check token that does not verify (enforced)"},
	{"app_check_replayed", "an App Check token already used (APP_CHECK_REPLAY_PROTECTION)"},
	{"app_check_not_consumable", "an App Check token the replay check cannot use: not a limited-use token"},
	// Policy (403).
	{"anonymous_refused", "an anonymous user while ALLOW_ANONYMOUS=false"},
	{"external_id_mismatch", "a userExternalId other than the signed-in user's UID"},
	// The function's own dependencies: 503 is an outage, retry; 500 is for the operator to fix.
	{"keys_unavailable", "Google's token signing keys expired and could not be fetched again"},
	{"auth_backend_unavailable", "Firebase Authentication unreachable or too slow (CHECK_REVOKED)"},
	{"auth_backend_exhausted", "Firebase Authentication over its quota (CHECK_REVOKED)"},
	{"auth_backend_refused", "Firebase Authentication refused the function's own credentials: grant the role (CHECK_REVOKED), 500"},
	{"app_check_unavailable", "App Check's keys could not be fetched in time (enforced)"},
	{"app_check_consume_failed", "the App Check replay check unreachable or too slow"},
	{"app_check_consume_refused", "the App Check API refused the function's own credentials: grant the role, 500"},
	{"secret_unavailable", "the HMAC secret not read yet (Secret Manager down, or a file not yet settled)"},
	{"misconfigured", "a configuration error kept the local runner's function from starting, 500"},
}
