package proficienthmac

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestClaimsReadAsSigned sends tokens signed with the key the Admin SDK trusts (the stand-in's)
// whose payloads are written by hand: names the SDK folds (encoding/json v1: case-insensitive, ſ
// as s, K as k, the last match winning) are refused, so that the SDK never checks another aud,
// iss or exp than the one read here; strings cut inside an emoji are a user's, served; a claim
// the SDK cannot decode is named. On the SDK's reading alone, every refused row marked "served
// before" answered 200.
func TestClaimsReadAsSigned(t *testing.T) {
	const victim, otherProject = "victim-uid", "demo-other"
	now := time.Now().Unix()
	// payload is a Firebase ID token's payload for project, with members added at the end.
	payload := func(project string, exp int64, members string) string {
		return fmt.Sprintf(`{"iss":"https://securetoken.google.com/%s","aud":"%s","auth_time":%d,"iat":%d,"exp":%d,"sub":"%s","user_id":"%s",%s}`,
			project, project, now-7200, now-7200, exp, testUID, testUID, members)
	}
	ours := func(members string) string { return payload(testProject, now+3600, members) }
	password := `"firebase":{"sign_in_provider":"password","identities":{}}`
	anonymous := `"firebase":{"sign_in_provider":"anonymous","identities":{}}`
	asOurs := `"Aud":"` + testProject + `","Iss":"https://securetoken.google.com/` + testProject + `"`
	noAnonymous := testConfig()
	noAnonymous.auth.allowAnonymous = false
	tests := []struct {
		name       string
		cfg        config
		payload    string
		wantCode   int
		wantReason string
		wantInMsg  string // a refusal's message names the claim
	}{
		{"a plain token", testConfig(), ours(password), 200, "ok", ""},
		{"custom claims, one with an Aud inside", testConfig(), ours(password + `,"role":"admin","custom":{"Aud":"x","Sub":"y"}`), 200, "ok", ""},
		{"a custom claim uid holding a string", testConfig(), ours(password + `,"uid":"legacy-42"`), 200, "ok", ""},
		{"a custom claim UID holding a string", testConfig(), ours(password + `,"UID":"legacy-42"`), 200, "ok", ""},
		// A display name or custom claim cut inside an emoji: JSON.stringify writes the lone
		// surrogate escaped, the Auth emulator and Firebase Auth keep it, onCall serves it.
		{"a display name cut inside an emoji", testConfig(), ours(password + `,"name":"Ann \ud83d"`), 200, "ok", ""},
		{"a custom claim cut inside an emoji", testConfig(), ours(password + `,"nick":"\udc00x","tags":["\ud83d"]`), 200, "ok", ""},

		// Another project's token made to look like ours (served before).
		{"Aud and Iss after another project's aud and iss", testConfig(), payload(otherProject, now+3600, password+","+asOurs), 401, "claims_ambiguous", `"Aud"`},
		{"AUD and ISS after them", testConfig(), payload(otherProject, now+3600, password+`,"AUD":"`+testProject+`","ISS":"https://securetoken.google.com/`+testProject+`"`), 401, "claims_ambiguous", "is \"aud\" to the Admin SDK"},
		{"aud and iſs (U+017F) after them", testConfig(), payload(otherProject, now+3600, password+`,"aud":"`+testProject+`","iſs":"https://securetoken.google.com/`+testProject+`"`), 401, "claims_ambiguous", ""},
		// Before the real names, they lose to them in the SDK's reading, which refuses the token.
		{"Aud and Iss before them", testConfig(), strings.Replace(payload(otherProject, now+3600, password), "{", "{"+asOurs+",", 1), 401, "wrong_project", otherProject},
		{"Aud alone in our own token", testConfig(), strings.Replace(ours(password), `"aud":`, `"Aud":`, 1), 401, "claims_ambiguous", `"Aud"`},
		// An expired token made to look fresh (served before).
		{"Exp ten years ahead after an expired exp", testConfig(), payload(testProject, now-3600, password+fmt.Sprintf(`,"Exp":%d`, now+10*365*86400)), 401, "claims_ambiguous", `"Exp"`},
		{"eXp before an expired exp", testConfig(), strings.Replace(payload(testProject, now-3600, password), "{", fmt.Sprintf(`{"eXp":%d,`, now+3600), 1), 401, "token_expired", "expired"},
		{"Auth_Time", testConfig(), ours(password + `,"Auth_Time":0`), 401, "claims_ambiguous", `"Auth_Time"`},
		// Another UID (served before, as the victim).
		{"Sub after sub", testConfig(), ours(password + `,"Sub":"` + victim + `"`), 401, "claims_ambiguous", `"Sub"`},
		{"ſub", testConfig(), ours(password + `,"ſub":"` + victim + `"`), 401, "claims_ambiguous", `"ſub"`},
		{"sub given twice", testConfig(), ours(password + `,"sub":"` + victim + `"`), 401, "claims_ambiguous", ""},
		{"User_Id", testConfig(), ours(password + `,"User_Id":"` + victim + `"`), 401, "claims_ambiguous", `"User_Id"`},
		{"sub and user_id differ", testConfig(), strings.Replace(ours(password), `"user_id":"`+testUID, `"user_id":"`+victim, 1), 401, "claims_ambiguous", `"user_id"`},
		{"no user_id", testConfig(), strings.Replace(ours(password), `"user_id":"`+testUID+`",`, "", 1), 401, "claims_ambiguous", `"user_id"`},
		// Inside firebase: how the user signed in, and the tenant.
		{"Firebase after an anonymous firebase", noAnonymous, ours(anonymous + `,"Firebase":{"sign_in_provider":"password"}`), 401, "claims_ambiguous", `"Firebase"`},
		{"firebase given twice", noAnonymous, ours(anonymous + "," + password), 401, "claims_ambiguous", ""},
		{"Sign_In_Provider inside firebase", noAnonymous, ours(`"firebase":{"sign_in_provider":"anonymous","Sign_In_Provider":"password"}`), 401, "claims_ambiguous", `"Sign_In_Provider"`},
		{"TENANT inside firebase", testConfig(), ours(`"firebase":{"sign_in_provider":"password","tenant":"tenant-a","TENANT":""}`), 401, "claims_ambiguous", `"TENANT"`},
		{"Tenant alone inside firebase", testConfig(), ours(`"firebase":{"sign_in_provider":"password","Tenant":"tenant-a"}`), 401, "claims_ambiguous", `"Tenant"`},
		{"a name twice deeper down", testConfig(), ours(`"firebase":{"sign_in_provider":"password","identities":{"email":[],"email":[]}}`), 401, "claims_ambiguous", ""},
		{"two custom claims equal but for case", testConfig(), ours(password + `,"role":"a","Role":"b"`), 401, "claims_ambiguous", `"role"`},
		// Claims the Go SDK cannot decode (onCall serves them): every token of such a user is
		// refused, so the message names the claim and the fix.
		{"a custom claim uid holding a number", testConfig(), ours(password + `,"uid":12345`), 401, "claim_undecodable", `claim "uid" holds a number, and the Go Admin SDK reads it as its own "uid" claim, a string`},
		{"a custom claim Exp holding a string", testConfig(), ours(password + `,"Exp":"never"`), 401, "claim_undecodable", `claim "Exp" holds a string, and the Go Admin SDK reads it as its own "exp" claim, a whole number`},
		{"a tenant holding a number", testConfig(), ours(`"firebase":{"sign_in_provider":"password","tenant":7}`), 401, "claim_undecodable", `claim "firebase.tenant" holds a number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, logs := newTestHandler(t, tt.cfg, dependencies{})
			w := call(h, "POST", "", "Authorization", "Bearer "+google.IDTokenFromJSON(tt.payload))
			if w.Code != tt.wantCode {
				t.Fatalf("status: got %d, want %d (%s)", w.Code, tt.wantCode, w.Body.String())
			}
			if !strings.Contains(logs.String(), `"reason":"`+tt.wantReason+`"`) {
				t.Errorf("log %q: want reason %s", logs.String(), tt.wantReason)
			}
			a := decode(t, w)
			if tt.wantCode == 200 {
				checkHMAC(t, a, protocolREST, testUID, testUIDHMAC)
				return
			}
			if a.HMAC != "" || strings.Contains(w.Body.String(), victim) || !strings.Contains(a.Error.Message, tt.wantInMsg) {
				t.Errorf("answer %s: want a refusal naming %s, no HMAC and no other UID", w.Body.String(), tt.wantInMsg)
			}
		})
	}
}
