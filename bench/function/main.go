// Command function is the function as Cloud Run runs it: this is the main the Go buildpack
// generates for a function (import the package, whose init registers it, and start the
// Functions Framework on $PORT). make bench measures this binary, and deploy/ builds the
// uploaded files with it.
package main

import (
	"log"
	"os"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
	_ "github.com/proficient-hmac/proficient-hmac"
)

func main() {
	port := "8080"
	if envPort := os.Getenv("PORT"); envPort != "" {
		port = envPort
	}
	if err := funcframework.Start(port); err != nil {
		log.Fatalf("funcframework.Start: %v\n", err)
	}
}
