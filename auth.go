package proficienthmac

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/auth"
	"firebase.google.com/go/v4/errorutils"
	"google.golang.org/api/option"
)

// firebaseVerifier is what both *auth.Client and *auth.TenantClient offer.
type firebaseVerifier interface {
	VerifyIDToken(ctx context.Context, idToken string) (*auth.Token, error)
	VerifyIDTokenAndCheckRevoked(ctx context.Context, idToken string) (*auth.Token, error)
}

var (
	_ firebaseVerifier = (*auth.Client)(nil)
	_ firebaseVerifier = (*auth.TenantClient)(nil)
)

// An authenticator verifies Firebase ID tokens and applies the function's policy to them.
type authenticator struct {
	verify    verifyFunc
	keys      *keyRefresher // nil against the emulator
	projectID string
	policy    authPolicy
	timeout   time.Duration // bounds the Admin SDK's work for one request
}

// verifyTimeout bounds the Admin SDK's work for one request (a key fetch, a user lookup), so an
// outage at Google answers 503 within seconds rather than after all the SDK's retries (≈7.5 s).
const verifyTimeout = 5 * time.Second

// newVerifier builds the token check from the Admin SDK, for projectID's users as policy says.
// Verifying signatures needs no Google credentials (the keys are public), so none are used unless
// CHECK_REVOKED needs the Auth backend (the Auth emulator needs none); extra options are for tests.
func newVerifier(ctx context.Context, projectID string, policy authPolicy, emulator bool, extra ...option.ClientOption) (verifyFunc, error) {
	var opts []option.ClientOption
	if !policy.checkRevoked || emulator {
		opts = append(opts, option.WithoutAuthentication())
	}
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: projectID}, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("firebase.NewApp: %w", err)
	}
	client, err := app.Auth(ctx)
	if err != nil {
		if policy.checkRevoked {
			return nil, &configError{"CHECK_REVOKED", "needs Google credentials, and none were found",
				"give the function a service account (on a laptop: gcloud auth application-default login), or unset it"}
		}
		return nil, fmt.Errorf("firebase Auth client: %w", err)
	}
	var v firebaseVerifier = client
	if policy.tenantID != "" {
		if v, err = client.TenantManager.AuthForTenant(policy.tenantID); err != nil {
			return nil, fmt.Errorf("firebase tenant client: %w", err)
		}
	}
	if policy.checkRevoked {
		return v.VerifyIDTokenAndCheckRevoked, nil
	}
	return v.VerifyIDToken, nil
}

// bearerToken returns the token from the request's only Authorization header, or "".
func bearerToken(h http.Header) string {
	values := h.Values("Authorization")
	if len(values) != 1 {
		return ""
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// newAuthenticator builds the token check. Against the Auth emulator it verifies with one Admin
// SDK client (its tokens are unsigned); otherwise the client is renewed by a keyRefresher that
// lives as long as life, and warm is closed when its first fetch of Google's keys has ended.
func newAuthenticator(ctx, life context.Context, cfg config, timeout time.Duration, log *slog.Logger, opts ...option.ClientOption) (a *authenticator, warm <-chan struct{}, err error) {
	build := func(ctx context.Context) (verifyFunc, error) {
		return newVerifier(ctx, cfg.projectID, cfg.auth, cfg.emulatorHost != "", opts...)
	}
	verify, err := build(ctx) // a configuration that cannot work stops the start
	if err != nil {
		return nil, nil, err
	}
	a = &authenticator{verify: verify, projectID: cfg.projectID, policy: cfg.auth, timeout: timeout}
	if cfg.emulatorHost != "" {
		done := make(chan struct{})
		close(done)
		return a, done, nil
	}
	keys := newKeyRefresher(build, cfg.projectID, timeout, log)
	go keys.run(life)
	a.verify, a.keys = keys.verify, keys
	return a, keys.started, nil
}

// maxIDToken bounds the token handed to the Admin SDK, whose decoding allocates many times a
// token's size: a Firebase ID token is about 1 KiB, and custom claims add at most 1000 bytes.
const maxIDToken = 16 << 10

// authenticate verifies the request's ID token with the Admin SDK, then reads its claims strictly
// (claims.go): expiry without the SDK's 300 s of leeway (onCall allows none), and the tenant.
func (a *authenticator) authenticate(ctx context.Context, header http.Header) (claims, *apiError) {
	idToken := bearerToken(header)
	if idToken == "" {
		return claims{}, credentialMissing("no_token", "Sign in first: send the user's Firebase ID token as Authorization: Bearer <token>.")
	}
	if len(idToken) > maxIDToken {
		return claims{}, unauthenticated("token_too_large", "The ID token is larger than 16 KiB, which no Firebase ID token is: sign in again.", nil)
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	token, err := a.verify(ctx, idToken)
	if err != nil {
		return claims{}, a.refusal(idToken, err)
	}
	c, err := readClaims(idToken, token)
	switch {
	case err != nil:
		return claims{}, claimsRefused(err)
	case !time.Now().Before(c.expires):
		return claims{}, tokenExpired(fmt.Errorf("ID token expired at %d", c.expires.Unix()))
	case c.tenant != a.policy.tenantID:
		// Without FIREBASE_TENANT_ID the SDK accepts any tenant's tokens, but UIDs are unique
		// only within a tenant: two tenants' "alice" would share an HMAC.
		return claims{}, unauthenticated("wrong_tenant", "The ID token is for another tenant: sign in to this app's tenant.",
			fmt.Errorf("token of tenant %.64q; FIREBASE_TENANT_ID is %q", c.tenant, a.policy.tenantID))
	}
	return c, nil
}

// refusal answers a token the Admin SDK refused, saying what would mend it where the SDK's
// verdict alone would not: a session cookie, another project's token, a claim it cannot decode.
func (a *authenticator) refusal(idToken string, err error) *apiError {
	if isSessionCookie(idToken) {
		return sessionCookieRefused(err)
	}
	if auth.IsIDTokenInvalid(err) {
		if claim := undecodableClaim(idToken); claim != nil {
			return claimUndecodable(claim)
		}
	}
	if apiErr := otherProject(idToken, a.projectID, err); apiErr != nil {
		return apiErr
	}
	return verifyError(err)
}

func tokenExpired(cause error) *apiError {
	return unauthenticated("token_expired", "The ID token has expired: get a fresh one (getIdToken(true)) and retry.", cause)
}

// projectIDShape is what a Google Cloud project ID looks like: safe to name in a message.
var projectIDShape = regexp.MustCompile(`^[a-z][a-z0-9-]{4,28}[a-z0-9]$`)

// otherProject names the project a refused token is for, when it is not the one this function
// serves: signing in again never mends that, so the message says which two projects differ.
// Project IDs are public; an aud that is not shaped like one is not repeated.
func otherProject(idToken, projectID string, cause error) *apiError {
	if !auth.IsIDTokenInvalid(cause) {
		return nil
	}
	var claims struct {
		Aud string `json:"aud"`
	}
	if decodePayload(idToken, &claims) != nil || claims.Aud == projectID {
		return nil
	}
	if !projectIDShape.MatchString(claims.Aud) {
		return unauthenticated("wrong_project", "The ID token is for another Firebase project, but this function serves "+projectID+
			": sign in with the Firebase app of project "+projectID+".", cause)
	}
	return unauthenticated("wrong_project", "The ID token is for project "+claims.Aud+", but this function serves "+projectID+
		": sign in with the Firebase app of project "+projectID+", or run the function for project "+claims.Aud+".", cause)
}

// verifyError turns the Admin SDK's verdict into an answer. An outage at Google is a 503, not a
// bad token; any other failure (including a user the Auth emulator no longer knows) is a 401.
func verifyError(err error) *apiError {
	switch {
	case auth.IsIDTokenExpired(err):
		return tokenExpired(err)
	case auth.IsIDTokenRevoked(err):
		return unauthenticated("token_revoked", "The ID token has been revoked: sign in again.", err)
	case auth.IsUserDisabled(err):
		return permissionDenied("user_disabled", "This user account is disabled.", err)
	case auth.IsTenantIDMismatch(err):
		return unauthenticated("wrong_tenant", "The ID token is for another tenant: sign in to this app's tenant.", err)
	case auth.IsCertificateFetchFailed(err), errors.Is(err, errKeysUnavailable):
		return unavailable("keys_unavailable", "Google's token signing keys cannot be fetched right now; retry shortly.", err)
	case errors.Is(err, context.DeadlineExceeded), errorutils.IsUnavailable(err), errorutils.IsDeadlineExceeded(err),
		errorutils.IsInternal(err), errorutils.IsUnknown(err):
		return unavailable("auth_backend_unavailable", "Firebase Authentication cannot be reached right now; retry shortly.", err)
	case errorutils.IsResourceExhausted(err):
		// A quota at Google, not a bad token: a 401 would sign the user out.
		return unavailable("auth_backend_exhausted", "Firebase Authentication is over its quota right now; retry shortly.", err)
	case errorutils.IsPermissionDenied(err), errorutils.IsUnauthenticated(err):
		// The Auth backend refused our own credentials (CHECK_REVOKED): the operator must fix IAM.
		return internalError("auth_backend_refused", "The server cannot check the token with Firebase Authentication.", err)
	}
	return unauthenticated("token_invalid", "The ID token is not valid for this app: sign in again.", err)
}

// authorise applies the policy to a verified token's claims and the external ID the client claimed.
func (a *authenticator) authorise(c claims, claimedID *string) *apiError {
	if !a.policy.allowAnonymous && c.signInProvider == "anonymous" {
		return permissionDenied("anonymous_refused", "Anonymous users cannot get an HMAC: sign in with an account.", nil)
	}
	if claimedID != nil && *claimedID != c.uid {
		return permissionDenied("external_id_mismatch",
			"The HMAC is issued only for the signed-in user's UID; userExternalId must be that UID or absent.", nil)
	}
	return nil
}
