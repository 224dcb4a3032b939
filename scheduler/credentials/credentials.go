// Package credentials reads the secrets the scheduler authenticates with
// (the Mesos framework secret, ZooKeeper digest credentials) from files,
// never from environment values: Marathon's env and /master/state show
// every environment variable of the scheduler, a file's content appears
// nowhere.
package credentials

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
)

// maxSize bounds a secret file; a DC/OS service account document (a PEM
// key in JSON) is about 2 KiB.
const maxSize = 16 << 10

// ErrServiceAccountLogin: the file is a DC/OS service account document
// (uid and private key), which authenticates through a login to DC/OS IAM
// (scheduler/dcoslogin), not with HTTP Basic; ReadServiceAccount reads it.
var ErrServiceAccountLogin = errors.New("the file is a DC/OS service account document (uid, private_key), not a plain secret")

// ReadSecret reads a one-line secret from path: surrounding white space
// (a trailing newline) is dropped; an empty secret, control characters or
// more than one line are refused. Errors name the file, never the content.
func ReadSecret(path string) (string, error) {
	b, err := readFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("secret file %s is empty", path)
	}
	if looksLikeServiceAccount(b) {
		return "", fmt.Errorf("secret file %s: %w", path, ErrServiceAccountLogin)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "", fmt.Errorf("secret file %s holds more than one line or a control character; it must hold the secret alone", path)
		}
	}
	return s, nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read the secret file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read the secret file %s: %w", path, err)
	}
	if len(b) > maxSize {
		return nil, fmt.Errorf("secret file %s is larger than %d bytes: not a secret", path, maxSize)
	}
	return b, nil
}

func looksLikeServiceAccount(b []byte) bool {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return false
	}
	var doc struct {
		PrivateKey string `json:"private_key"`
	}
	return json.Unmarshal(b, &doc) == nil && doc.PrivateKey != ""
}

// ReadServiceAccount returns the content of a DC/OS service account
// document (ErrServiceAccountLogin from ReadSecret said it is one).
func ReadServiceAccount(path string) ([]byte, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	if !looksLikeServiceAccount(b) {
		return nil, fmt.Errorf("%s is not a DC/OS service account document", path)
	}
	return b, nil
}

// ZK is a ZooKeeper digest identity.
type ZK struct {
	User, Password string
}

// String never shows the password.
func (z ZK) String() string { return "digest:" + z.User + ":<redacted>" }

// GoString, for %#v.
func (z ZK) GoString() string { return z.String() }

// Auth is what ZooKeeper's addAuth("digest", ...) takes: "user:password".
func (z ZK) Auth() []byte { return []byte(z.User + ":" + z.Password) }

// ReadZK reads "user:password" from path (one line). The user may not
// contain ':'; the password may.
func ReadZK(path string) (ZK, error) {
	s, err := ReadSecret(path)
	if err != nil {
		return ZK{}, err
	}
	user, pass, ok := strings.Cut(s, ":")
	if !ok || user == "" || pass == "" {
		return ZK{}, fmt.Errorf("ZooKeeper credentials file %s must hold user:password (one line, both non-empty)", path)
	}
	return ZK{User: user, Password: pass}, nil
}
