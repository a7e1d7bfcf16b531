// Command reference is the floor the function is measured against: a minimal net/http server
// that does only what any such backend must, VerifyIDToken with the Admin SDK, the HMAC and a
// JSON answer. No parsing, policy, CORS, logging or secret cache.
//
// With -as-function it is served the way Cloud Run serves a Go function, by the Functions
// Framework (registered in the framework's registry and started as the buildpack's main starts
// it), and it reads the request body, as any function that takes {"data": …} must. That is
// the floor for this platform: what the framework and net/http cost a function that reads
// its request, before any of its own work.
package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"io"
	"log"
	"net/http"
	"os"
	"strings"

	firebase "firebase.google.com/go/v4"
	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"google.golang.org/api/option"
)

var asFunction = flag.Bool("as-function", false, "serve through the Functions Framework and read the body")

func main() {
	flag.Parse()
	ctx := context.Background()
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: os.Getenv("GOOGLE_CLOUD_PROJECT")}, option.WithoutAuthentication())
	if err != nil {
		log.Fatal(err)
	}
	client, err := app.Auth(ctx)
	if err != nil {
		log.Fatal(err)
	}
	secret := []byte(os.Getenv("PROFICIENT_HMAC_SECRET"))
	handle := func(w http.ResponseWriter, r *http.Request) {
		if *asFunction {
			io.Copy(io.Discard, r.Body)
		}
		token, err := client.VerifyIDToken(r.Context(), strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		if err != nil {
			http.Error(w, `{"error":"unauthenticated"}`, http.StatusUnauthorized)
			return
		}
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(token.UID))
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"hmac": base64.StdEncoding.EncodeToString(mac.Sum(nil)), "userExternalId": token.UID})
	}
	if *asFunction {
		// As the function does: left set, K_SERVICE makes the framework write two empty
		// lines a request (functions-framework-go issue #8).
		os.Unsetenv("K_SERVICE")
		functions.HTTP("ProficientHMAC", handle)
		log.Fatal(funcframework.Start(os.Getenv("PORT")))
	}
	http.HandleFunc("/", handle)
	log.Fatal(http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil))
}
