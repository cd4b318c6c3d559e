package auth

import (
	"github.com/golang-jwt/jwt/v5"
)

// SignHS256 mints an HS256 token with the given claims. Herald uses it for the
// development server's ready-to-use token and in tests; production tokens are
// minted by the team's backend.
func SignHS256(secret string, claims map[string]any) (string, error) {
	return jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(claims)).SignedString([]byte(secret))
}
