package proficienthmac

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzMembers checks members against encoding/json: for any valid JSON object, it must yield
// the same keys and the same values as decoding into a map of raw messages does.
func FuzzMembers(f *testing.F) {
	for _, seed := range []string{
		`{}`, ` { } `, `{"data":null}`, `{"data":{"userExternalId":"x","n":[1,{"a":"}"}]}}`,
		`{"a":1,"b":-2.5e3,"c":true,"d":false,"e":null}`, "{\n\t\"a\" :\r\n [ ] , \"b\" : { } \n}",
		`{"k\"ey":"va\\\"l}ue","\u0064ata":"\\"}`, `{"a":"]","b":"[","c":"{,}"}`, `{"x":[[[]]],"y":[{},{}]}`,
		`{"data":1,"data":2}`, `{"":""}`, `{"emoji":"🔑","ユーザー":"ñ"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var want map[string]json.RawMessage
		if json.Unmarshal(body, &want) != nil || want == nil || !json.Valid(body) {
			return // members is only ever given valid JSON objects
		}
		got := map[string]json.RawMessage{}
		for key, value := range members(body) {
			var name string
			if err := json.Unmarshal(key, &name); err != nil {
				t.Fatalf("key %q is not a JSON string: %v", key, err)
			}
			if !json.Valid(value) {
				t.Fatalf("value %q of %q is not JSON", value, name)
			}
			got[name] = value
		}
		if len(got) != len(want) {
			t.Fatalf("%q: got %d members, want %d", body, len(got), len(want))
		}
		for name, value := range want {
			if !bytes.Equal(bytes.TrimSpace(got[name]), bytes.TrimSpace(value)) {
				t.Fatalf("%q: member %q: got %q, want %q", body, name, got[name], value)
			}
		}
	})
}
