package auth

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// KeySpec is one configured verification key.
type KeySpec struct {
	// Kid is optional; a JWK's own kid is used when this is empty. When both
	// are set they must agree (in a JWKS, JWKs with another kid are skipped).
	Kid string
	// Alg is the pinned algorithm, e.g. "HS256", "RS256", "PS256", "ES256",
	// "EdDSA". It is required for HMAC secrets and PEM keys; for a JWK with
	// "alg" it may be empty (the JWK's alg is used) or must equal it; a JWK
	// without alg needs it.
	Alg string
	// Secret is an HMAC secret, inline (Alg must be HS256/HS384/HS512).
	Secret string
	// Value is inline key text: PEM (PUBLIC KEY, RSA PUBLIC KEY or
	// CERTIFICATE), a JWK JSON object, or a JWKS JSON {"keys":[...]}.
	Value string
	// Env names an environment variable holding a secret (when Alg is HS*)
	// or key text as in Value.
	Env string
	// File is the path of a file holding key text as in Value or, when Alg
	// is HS*, the raw secret (trailing newlines trimmed).
	File string
	// ValidUntil, when set, is when the key stops verifying (the previous
	// secret during rotation); it becomes Key.NotAfter.
	ValidUntil time.Time
}

// maxKeyText bounds a key file or environment variable.
const maxKeyText = 1 << 20

// minRSABits is the smallest RSA modulus accepted.
const minRSABits = 2048

// KeySpecError is the problem of one key spec.
type KeySpecError struct {
	Index  int    // index of the spec in the slice given to LoadKeys
	Origin string // "inline", "env NAME", "file PATH", "no source", ...
	Err    error
}

func (e *KeySpecError) Error() string {
	return fmt.Sprintf("key %d (%s): %v", e.Index, e.Origin, e.Err)
}

func (e *KeySpecError) Unwrap() error { return e.Err }

// LoadError lists every problem LoadKeys found.
type LoadError struct {
	Problems []*KeySpecError
}

func (e *LoadError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Error()
	}
	return strings.Join(msgs, "; ")
}

// Unwrap returns the problems, for errors.As.
func (e *LoadError) Unwrap() []error {
	out := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p
	}
	return out
}

// LoadKeys reads every spec. getenv is os.LookupEnv in production (nil means
// os.LookupEnv). It returns every problem (not just the first) as one
// *LoadError naming each spec by index (0-based) and origin, e.g.
// `key 2 (file /etc/herald/pub.pem): not a PEM public key, certificate, JWK or JWKS`.
// On error no key is returned: a partial set would silently drop keys.
// Each returned Key is pinned to exactly one algorithm.
func LoadKeys(specs []KeySpec, getenv func(string) (string, bool)) ([]*Key, error) {
	if getenv == nil {
		getenv = os.LookupEnv
	}
	var (
		keys     []*Key
		problems []*KeySpecError
	)
	for i, s := range specs {
		ks, err := loadSpec(s, getenv)
		if err != nil {
			problems = append(problems, &KeySpecError{Index: i, Origin: specOrigin(s), Err: err})
			continue
		}
		keys = append(keys, ks...)
	}
	if len(problems) > 0 {
		return nil, &LoadError{Problems: problems}
	}
	return keys, nil
}

// KeySpecFiles returns the files the specs read, for WatchFiles.
func KeySpecFiles(specs []KeySpec) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range specs {
		if s.File != "" && !seen[s.File] {
			seen[s.File] = true
			out = append(out, s.File)
		}
	}
	return out
}

// specSources names the sources a spec sets, in a fixed order.
func specSources(s KeySpec) []string {
	var out []string
	if s.Secret != "" {
		out = append(out, "secret")
	}
	if s.Value != "" {
		out = append(out, "value")
	}
	if s.Env != "" {
		out = append(out, "env")
	}
	if s.File != "" {
		out = append(out, "file")
	}
	return out
}

// specOrigin describes where a spec's key comes from, for messages and Key.Origin.
func specOrigin(s KeySpec) string {
	var parts []string
	for _, src := range specSources(s) {
		switch src {
		case "secret", "value":
			if !slices.Contains(parts, "inline") {
				parts = append(parts, "inline")
			}
		case "env":
			parts = append(parts, "env "+s.Env)
		case "file":
			parts = append(parts, "file "+s.File)
		}
	}
	if len(parts) == 0 {
		return "no source"
	}
	return strings.Join(parts, ", ")
}

func loadSpec(s KeySpec, getenv func(string) (string, bool)) ([]*Key, error) {
	srcs := specSources(s)
	switch len(srcs) {
	case 0:
		return nil, errors.New("no key given: set one of secret, value, env or file")
	case 1:
	default:
		return nil, fmt.Errorf("give exactly one of secret, value, env or file; this key sets %s", strings.Join(srcs, " and "))
	}
	var fam Family
	if s.Alg != "" {
		if err := checkKeyAlg(s.Alg); err != nil {
			return nil, err
		}
		fam = AlgFamily(s.Alg)
	}
	origin := specOrigin(s)

	var (
		text     string
		isSecret bool
	)
	switch srcs[0] {
	case "secret":
		if s.Alg == "" {
			return nil, errors.New("alg is required for an HMAC secret: HS256, HS384 or HS512")
		}
		if fam != FamilyHMAC {
			return nil, fmt.Errorf("a secret is for HMAC: alg must be HS256, HS384 or HS512, not %s", s.Alg)
		}
		text, isSecret = s.Secret, true
	case "value":
		text = s.Value
	case "env":
		v, ok := getenv(s.Env)
		if !ok {
			return nil, fmt.Errorf("environment variable %s is not set", s.Env)
		}
		if v == "" {
			return nil, fmt.Errorf("environment variable %s is empty", s.Env)
		}
		text, isSecret = v, fam == FamilyHMAC
	case "file":
		b, err := readKeyFile(s.File)
		if err != nil {
			return nil, err
		}
		text, isSecret = string(b), fam == FamilyHMAC
		if isSecret {
			text = strings.TrimRight(text, "\r\n")
		}
		if strings.TrimSpace(text) == "" {
			return nil, errors.New("file is empty")
		}
	}
	if isSecret {
		return loadSecret(text, s, origin)
	}
	return parseKeyText(text, s, origin, true)
}

// readKeyFile reads a key file, refusing huge files and directories.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, errors.New("file does not exist")
		case errors.Is(err, fs.ErrPermission):
			return nil, errors.New("file is not readable (permission denied)")
		}
		return nil, fmt.Errorf("cannot open file: %v", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return nil, errors.New("is a directory, not a key file")
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyText+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read file: %v", err)
	}
	if len(b) > maxKeyText {
		return nil, errors.New("file is larger than 1 MiB; not a key file")
	}
	return b, nil
}

// checkKeyAlg refuses algorithms Herald does not verify.
func checkKeyAlg(alg string) error {
	if AlgFamily(alg) != "" {
		return nil
	}
	if strings.EqualFold(alg, "none") {
		return errors.New("alg none is never accepted: tokens must be signed")
	}
	for _, algs := range familyAlgs {
		for _, a := range algs {
			if strings.EqualFold(a, alg) {
				return fmt.Errorf("alg %q is not supported; did you mean %s?", alg, a)
			}
		}
	}
	return fmt.Errorf("alg %q is not supported; use one of %s", alg, strings.Join(supportedAlgs(), ", "))
}

// supportedAlgs lists every supported algorithm in a stable order.
func supportedAlgs() []string {
	var out []string
	for _, f := range []Family{FamilyHMAC, FamilyRSA, FamilyEC, FamilyEdDSA} {
		out = append(out, familyAlgs[f]...)
	}
	return out
}

// loadSecret turns an HMAC secret into a key, refusing key text given as a
// secret (a public key used as an HMAC secret is the classic alg-confusion hole).
func loadSecret(secret string, s KeySpec, origin string) ([]*Key, error) {
	t := strings.TrimSpace(secret)
	if strings.Contains(t, "-----BEGIN ") {
		_, _, err := parsePEM(t)
		var pk privateKeyError
		if errors.As(err, &pk) {
			return nil, err
		}
		return nil, fmt.Errorf("HMAC with a public key is not allowed: alg %s needs a shared secret, but this is PEM key text", s.Alg)
	}
	if strings.HasPrefix(t, "{") {
		var probe map[string]json.RawMessage
		if json.Unmarshal([]byte(t), &probe) == nil {
			_, isJWK := probe["kty"]
			_, isSet := probe["keys"]
			if isJWK || isSet {
				// A JWK (kty oct is accepted) or JWKS: parse it as key text.
				return parseKeyText(t, s, origin, true)
			}
		}
	}
	if secret == "" {
		return nil, errors.New("secret is empty")
	}
	b := []byte(secret)
	return []*Key{{ID: s.Kid, Family: FamilyHMAC, Algs: []string{s.Alg}, Material: b,
		Fingerprint: Fingerprint(b), Origin: origin, NotAfter: s.ValidUntil}}, nil
}

const notKeyText = "not a PEM public key, certificate, JWK or JWKS"

// parseKeyText parses PEM, a JWK or a JWKS. static is true for configured
// keys (LoadKeys): a kty oct JWK is then allowed for a pinned HS* alg.
func parseKeyText(text string, s KeySpec, origin string, static bool) ([]*Key, error) {
	t := strings.TrimSpace(text)
	switch {
	case strings.HasPrefix(t, "{"):
		var probe map[string]json.RawMessage
		if err := json.Unmarshal([]byte(t), &probe); err != nil {
			return nil, fmt.Errorf("%s: %s", notKeyText, jsonErrorText(err))
		}
		opts := jwkOptions{alg: s.Alg, kid: s.Kid, allowOct: static, origin: origin, notAfter: s.ValidUntil}
		if _, ok := probe["keys"]; ok {
			return loadJWKSDoc([]byte(t), opts)
		}
		if _, ok := probe["kty"]; !ok {
			return nil, fmt.Errorf("%s: a JSON object without kty or keys", notKeyText)
		}
		k, err := jwkToKey([]byte(t), opts)
		if err != nil {
			return nil, err
		}
		return []*Key{k}, nil
	case strings.Contains(t, "-----BEGIN "):
		if !strings.Contains(t, "\n") && strings.Contains(t, `\n`) {
			// PEM pasted into an environment variable with escaped newlines.
			t = strings.ReplaceAll(t, `\n`, "\n")
		}
		pub, what, err := parsePEM(t)
		if err != nil {
			return nil, err
		}
		k, err := publicKeyToKey(pub, s.Alg, s.Kid, what, origin, s.ValidUntil)
		if err != nil {
			return nil, err
		}
		return []*Key{k}, nil
	}
	if strings.HasPrefix(t, "[") {
		return nil, fmt.Errorf(`%s: a JSON list (a JWKS is {"keys":[...]})`, notKeyText)
	}
	if AlgFamily(s.Alg) == FamilyHMAC {
		return nil, fmt.Errorf("%s (an HMAC secret goes in secret, env or file)", notKeyText)
	}
	return nil, errors.New(notKeyText)
}

// jsonErrorText describes a JSON error without quoting the input.
func jsonErrorText(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("member %q must be a %s, not a JSON %s", te.Field, goKindWord(te.Type.Kind().String()), te.Value)
		}
		return fmt.Sprintf("expected a JSON object, got a JSON %s", te.Value)
	}
	return "invalid JSON"
}

func goKindWord(goKind string) string {
	switch goKind {
	case "slice":
		return "list"
	case "struct", "map":
		return "object"
	}
	return goKind
}

// privateKeyError is the refusal of a private key.
type privateKeyError struct{ msg string }

func (e privateKeyError) Error() string { return e.msg }

const privatePEMHint = "this is a private key; give the public key instead (a verifier must never hold private keys): openssl pkey -in key.pem -pubout"

// parsePEM returns the public key of PEM text: a PUBLIC KEY (PKIX), an RSA
// PUBLIC KEY (PKCS#1) or a CERTIFICATE (further CERTIFICATE blocks, a chain,
// are ignored). Private keys anywhere in the text are refused.
func parsePEM(text string) (pub any, what string, err error) {
	rest := []byte(text)
	var blocks []*pem.Block
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if strings.Contains(b.Type, "PRIVATE KEY") {
			return nil, "", privateKeyError{privatePEMHint}
		}
		if b.Type == "EC PARAMETERS" {
			continue
		}
		blocks = append(blocks, b)
	}
	if len(blocks) == 0 {
		return nil, "", fmt.Errorf("%s: malformed PEM", notKeyText)
	}
	first := blocks[0]
	for _, b := range blocks[1:] {
		if first.Type != "CERTIFICATE" || b.Type != "CERTIFICATE" {
			return nil, "", fmt.Errorf("holds %d PEM blocks; give one key per key spec", len(blocks))
		}
	}
	switch first.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(first.Bytes)
		if err != nil {
			return nil, "", fmt.Errorf("invalid PEM public key: %s", x509ErrorText(err))
		}
		return pub, "PEM public key", nil
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(first.Bytes)
		if err != nil {
			return nil, "", fmt.Errorf("invalid PEM RSA public key: %s", x509ErrorText(err))
		}
		return pub, "PEM RSA public key", nil
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(first.Bytes)
		if err != nil {
			return nil, "", fmt.Errorf("invalid PEM certificate: %s", x509ErrorText(err))
		}
		return cert.PublicKey, "PEM certificate", nil
	}
	return nil, "", fmt.Errorf("%s: PEM block %q", notKeyText, first.Type)
}

// x509ErrorText keeps crypto/x509's message (it never quotes key bytes).
func x509ErrorText(err error) string {
	return Truncate(strings.TrimPrefix(err.Error(), "x509: "), 120)
}

// keyKind describes a public key for messages ("an RSA key") and returns its family.
func keyKind(pub any) (Family, string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return FamilyRSA, "an RSA key", nil
	case *ecdsa.PublicKey:
		return FamilyEC, "an EC key", nil
	case ed25519.PublicKey:
		return FamilyEdDSA, "an Ed25519 key", nil
	case *ecdh.PublicKey:
		if k.Curve() == ecdh.X25519() {
			return "", "", errors.New("an X25519 key is for key agreement and cannot verify signatures; use an Ed25519 key")
		}
		return "", "", errors.New("an ECDH key cannot verify signatures")
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey, *ecdh.PrivateKey:
		return "", "", privateKeyError{privatePEMHint}
	}
	return "", "", fmt.Errorf("unsupported key type %T", pub)
}

// familyKeyName is what an alg of the family needs, for messages.
var familyKeyName = map[Family]string{
	FamilyHMAC:  "a shared secret",
	FamilyRSA:   "an RSA key",
	FamilyEC:    "an EC key",
	FamilyEdDSA: "an Ed25519 key",
}

// algCurve is the curve each ES* alg needs.
var algCurve = map[string]string{"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}

// curveAlg is the ES* alg of each curve.
var curveAlg = map[string]string{"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}

// publicKeyToKey checks a public key against alg and makes it a Key. what
// names the input ("PEM public key", "JWK") for messages.
func publicKeyToKey(pub any, alg, kid, what, origin string, notAfter time.Time) (*Key, error) {
	fam, kind, err := keyKind(pub)
	if err != nil {
		return nil, err
	}
	if alg == "" {
		return nil, fmt.Errorf("alg is required for a %s; this is %s, which can verify %s", what, kind, strings.Join(keyAlgs(pub), ", "))
	}
	if err := checkKeyAlg(alg); err != nil {
		return nil, err
	}
	want := AlgFamily(alg)
	if want == FamilyHMAC {
		return nil, fmt.Errorf("HMAC with a public key is not allowed: alg %s needs a shared secret, got %s (public)", alg, kind)
	}
	if want != fam {
		return nil, fmt.Errorf("alg %s needs %s, got %s", alg, familyKeyName[want], kind)
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < minRSABits {
			return nil, fmt.Errorf("RSA key has %d bits; at least %d are required", bits, minRSABits)
		}
	case *ecdsa.PublicKey:
		got := "an unknown curve"
		if k.Curve != nil && k.Curve.Params() != nil {
			got = k.Curve.Params().Name
		}
		if _, ok := curveAlg[got]; !ok {
			return nil, fmt.Errorf("EC curve %s is not supported; use P-256, P-384 or P-521", got)
		}
		if algCurve[alg] != got {
			return nil, fmt.Errorf("alg %s needs a %s key, got a %s key", alg, algCurve[alg], got)
		}
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil, errors.New("Ed25519 key has the wrong size")
		}
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("cannot encode the public key: %v", err)
	}
	return &Key{ID: kid, Family: fam, Algs: []string{alg}, Material: pub,
		Fingerprint: Fingerprint(der), Origin: origin, NotAfter: notAfter}, nil
}

// keyAlgs lists the algorithms a public key could verify, for hints.
func keyAlgs(pub any) []string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return familyAlgs[FamilyRSA]
	case *ecdsa.PublicKey:
		if k.Curve != nil && k.Curve.Params() != nil {
			if a, ok := curveAlg[k.Curve.Params().Name]; ok {
				return []string{a}
			}
		}
	case ed25519.PublicKey:
		return []string{"EdDSA"}
	}
	return nil
}

// jwkDefaultAlg is the alg a JWKS key without alg is pinned to.
func jwkDefaultAlg(pub any) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return "RS256"
	case *ecdsa.PublicKey:
		if k.Curve != nil && k.Curve.Params() != nil {
			return curveAlg[k.Curve.Params().Name]
		}
	case ed25519.PublicKey:
		return "EdDSA"
	}
	return ""
}

// jwkOptions steer jwkToKey.
type jwkOptions struct {
	alg           string // pinned alg ("" = the JWK's)
	kid           string // configured kid ("" = the JWK's)
	allowOct      bool   // accept kty oct (HMAC secret) with a pinned HS* alg
	familyDefault bool   // a JWK without alg gets its family's default (JWKS URLs)
	origin        string
	notAfter      time.Time
}

// jwkError is why one JWK was not used.
type jwkError struct {
	msg     string
	private bool // the JWK holds private key material
}

func (e *jwkError) Error() string { return e.msg }

func jwkErr(format string, args ...any) error { return &jwkError{msg: fmt.Sprintf(format, args...)} }

// jwkProbe holds the JWK members checked before the key is parsed.
type jwkProbe struct {
	Kty    string   `json:"kty"`
	Kid    string   `json:"kid"`
	Alg    string   `json:"alg"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	Crv    string   `json:"crv"`
	N      string   `json:"n"`
	// Private members of RSA, EC and OKP keys.
	D  json.RawMessage `json:"d"`
	P  json.RawMessage `json:"p"`
	Q  json.RawMessage `json:"q"`
	DP json.RawMessage `json:"dp"`
	DQ json.RawMessage `json:"dq"`
	QI json.RawMessage `json:"qi"`
}

// jwkToKey turns one JWK into a Key, checking its use, alg, kid and kind.
func jwkToKey(raw []byte, o jwkOptions) (*Key, error) {
	var p jwkProbe
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, jwkErr("invalid JWK: %s", jsonErrorText(err))
	}
	switch p.Use {
	case "", "sig":
	case "enc":
		return nil, jwkErr("JWK is an encryption key (use enc)")
	default:
		return nil, jwkErr("JWK use %q is not sig", Truncate(p.Use, 20))
	}
	if len(p.KeyOps) > 0 && !slices.Contains(p.KeyOps, "verify") {
		return nil, jwkErr("JWK key_ops does not include verify")
	}
	if p.Kty != "oct" && (p.D != nil || p.P != nil || p.Q != nil || p.DP != nil || p.DQ != nil || p.QI != nil) {
		return nil, &jwkError{private: true,
			msg: "JWK holds a private key (it has \"d\"); give only its public members (a verifier must never hold private keys)"}
	}
	kid := p.Kid
	if o.kid != "" {
		if p.Kid != "" && p.Kid != o.kid {
			return nil, jwkErr("JWK kid %q disagrees with the configured kid %q", Truncate(p.Kid, 40), o.kid)
		}
		kid = o.kid
	}
	if p.Alg != "" {
		if err := checkKeyAlg(p.Alg); err != nil {
			return nil, jwkErr("JWK %s", err.Error())
		}
		if o.alg != "" && p.Alg != o.alg {
			return nil, jwkErr("JWK alg %s disagrees with the configured alg %s", p.Alg, o.alg)
		}
	}
	alg := o.alg
	if alg == "" {
		alg = p.Alg
	}
	switch p.Kty {
	case "oct":
		if !o.allowOct {
			return nil, jwkErr("JWK of kty oct (a shared secret) is not accepted here")
		}
		if AlgFamily(o.alg) != FamilyHMAC {
			if alg != "" && AlgFamily(alg) != FamilyHMAC {
				return nil, jwkErr("JWK of kty oct is an HMAC secret; alg %s needs %s", alg, familyKeyName[AlgFamily(alg)])
			}
			return nil, jwkErr("JWK of kty oct is an HMAC secret: pin it with alg HS256, HS384 or HS512 in the key spec")
		}
	case "RSA":
		if n, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(p.N, "=")); err == nil && len(n) > 0 {
			bits := len(n)*8 - leadingZeroBits(n)
			if bits < minRSABits {
				return nil, jwkErr("RSA key has %d bits; at least %d are required", bits, minRSABits)
			}
		}
	case "EC":
		if _, ok := curveAlg[p.Crv]; !ok {
			return nil, jwkErr("EC curve %q is not supported; use P-256, P-384 or P-521", Truncate(p.Crv, 20))
		}
	case "OKP":
		switch p.Crv {
		case "Ed25519":
		case "X25519", "X448":
			return nil, jwkErr("an %s key is for key agreement and cannot verify signatures; use an Ed25519 key", p.Crv)
		default:
			return nil, jwkErr("OKP curve %q is not supported; use Ed25519", Truncate(p.Crv, 20))
		}
	case "":
		return nil, jwkErr("JWK has no kty")
	default:
		return nil, jwkErr("JWK kty %q is not supported", Truncate(p.Kty, 20))
	}
	if p.Kty != "oct" && AlgFamily(alg) == FamilyHMAC {
		return nil, jwkErr("HMAC with a public key is not allowed: alg %s needs a shared secret, got a JWK of kty %s (public)", alg, p.Kty)
	}

	key, err := jwk.ParseKey(raw)
	if err != nil {
		return nil, jwkErr("invalid JWK of kty %s: %s", p.Kty, jwxErrorText(err, raw))
	}
	var material any
	if err := jwk.Export(key, &material); err != nil {
		return nil, jwkErr("invalid JWK of kty %s: %s", p.Kty, jwxErrorText(err, raw))
	}
	if p.Kty == "oct" {
		secret, ok := material.([]byte)
		if !ok || len(secret) == 0 {
			return nil, jwkErr("JWK of kty oct has an empty secret")
		}
		return &Key{ID: kid, Family: FamilyHMAC, Algs: []string{alg}, Material: secret,
			Fingerprint: Fingerprint(secret), Origin: o.origin, NotAfter: o.notAfter}, nil
	}
	if alg == "" && o.familyDefault {
		alg = jwkDefaultAlg(material)
	}
	if alg == "" {
		_, kind, err := keyKind(material)
		if err != nil {
			return nil, jwkErr("%s", err.Error())
		}
		return nil, jwkErr("JWK has no alg; set alg in the key spec (this is %s, which can verify %s)", kind, strings.Join(keyAlgs(material), ", "))
	}
	k, err := publicKeyToKey(material, alg, kid, "JWK", o.origin, o.notAfter)
	if err != nil {
		var pk privateKeyError
		return nil, &jwkError{msg: err.Error(), private: errors.As(err, &pk)}
	}
	return k, nil
}

func leadingZeroBits(b []byte) int {
	n := 0
	for _, c := range b {
		if c != 0 {
			for c&0x80 == 0 {
				n++
				c <<= 1
			}
			return n
		}
		n += 8
	}
	return n
}

// jwxErrorText keeps the last, most specific part of a jwx error, unless it
// quotes any of the JWK's string values (which may be key material).
func jwxErrorText(err error, raw []byte) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	var members map[string]any
	_ = json.Unmarshal(raw, &members)
	for name, v := range members {
		s, ok := v.(string)
		if !ok || len(s) < 4 {
			continue
		}
		switch name {
		case "kty", "crv", "alg", "use", "kid":
			continue
		}
		if strings.Contains(msg, s) || strings.Contains(msg, s[:len(s)/2]) {
			return "its parameters do not decode"
		}
	}
	return Truncate(msg, 120)
}

// loadJWKSDoc parses a JWKS document from configuration. Unusable JWKs (use
// enc, another kid or alg, unsupported kinds) are skipped and reported only
// when no JWK is usable; a private key anywhere is an error.
func loadJWKSDoc(doc []byte, o jwkOptions) ([]*Key, error) {
	keys, skipped, err := parseJWKSDoc(doc, o)
	if err != nil {
		return nil, err
	}
	for _, s := range skipped {
		if s.private {
			return nil, errors.New(s.String())
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no usable key in the JWKS: %s", skippedText(skipped))
	}
	return keys, nil
}

// skippedJWK is a JWK of a set that was not used, and why.
type skippedJWK struct {
	index   int
	kid     string
	reason  string
	private bool
}

func (s skippedJWK) String() string {
	name := fmt.Sprintf("JWK %d", s.index)
	if s.kid != "" {
		name += fmt.Sprintf(" (kid %q)", Truncate(s.kid, 40))
	}
	return name + ": " + s.reason
}

func skippedText(s []skippedJWK) string {
	if len(s) == 0 {
		return "it has no keys"
	}
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = v.String()
	}
	return strings.Join(parts, "; ")
}

// parseJWKSDoc parses {"keys":[...]} and converts each usable JWK.
func parseJWKSDoc(doc []byte, o jwkOptions) ([]*Key, []skippedJWK, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, nil, fmt.Errorf("not a JWKS: %s", jsonErrorText(err))
	}
	if set.Keys == nil {
		return nil, nil, errors.New(`not a JWKS: no "keys" list`)
	}
	var (
		keys    []*Key
		skipped []skippedJWK
	)
	for i, raw := range set.Keys {
		k, err := jwkToKey(raw, o)
		if err != nil {
			var kid struct {
				Kid any `json:"kid"`
			}
			_ = json.Unmarshal(raw, &kid)
			s, _ := kid.Kid.(string)
			je := &jwkError{msg: err.Error()}
			errors.As(err, &je)
			skipped = append(skipped, skippedJWK{index: i, kid: s, reason: je.msg, private: je.private})
			continue
		}
		keys = append(keys, k)
	}
	return keys, skipped, nil
}

// keyKids lists the kids of keys, for logs.
func keyKids(keys []*Key) []string {
	var out []string
	for _, k := range keys {
		if k.ID != "" {
			out = append(out, k.ID)
		}
	}
	sort.Strings(out)
	return out
}
