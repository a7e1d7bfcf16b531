package proficienthmac

import (
	"testing"
)

func TestIsLoopbackOrigin(t *testing.T) {
	tests := []struct {
		origin string
		want   bool
	}{
		{"http://localhost:5173", true},
		{"https://localhost", true},
		{"http://127.0.0.1:5002", true},
		{"http://[::1]:5002", true},
		{"http://app.localhost:3000", true},
		{"https://app.example.com", false},
		{"http://localhost.example.com", false},
		{"null", false},
		{"file://", false},
		{"chrome-extension://abcdef", false},
		{"http://localhost:5173/path", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := isLoopbackOrigin(tt.origin); got != tt.want {
			t.Errorf("isLoopbackOrigin(%q): got %v, want %v", tt.origin, got, tt.want)
		}
	}
}
