// Command reference is the floor the function is measured against: a minimal net/http server
// that does only what any such backend must, VerifyIDToken with the Admin SDK, the HMAC and a
// JSON answer. No parsing, policy, CORS, logging or secret cache.
package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"log"
	"net/http"
	"os"
	"strings"

	firebase "firebase.google.com/go/v4"
	"google.golang.org/api/option"
)

func main() {
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
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		token, err := client.VerifyIDToken(r.Context(), strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		if err != nil {
			http.Error(w, `{"error":"unauthenticated"}`, http.StatusUnauthorized)
			return
		}
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(token.UID))
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"hmac": base64.StdEncoding.EncodeToString(mac.Sum(nil)), "userExternalId": token.UID})
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil))
}
