// Package backup keeps Consul snapshots (GET /v1/snapshot) in a target: a
// directory (file://) or an HTTP server that takes PUT (http(s)://). Each
// snapshot is written atomically with its SHA-256 beside it and is checked
// against it before a restore. The schedule (when the next one is due,
// which ones to prune) is pure.
package backup

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Entry is one stored snapshot.
type Entry struct {
	Name   string    `json:"name"`
	Size   int64     `json:"size"`
	SHA256 string    `json:"sha256"`
	Taken  time.Time `json:"taken"`
	// Locations says where copies are (the backup target, servers'
	// volumes); set by listings that merge them.
	Locations []string `json:"locations,omitempty"`
}

// Target stores snapshots.
type Target interface {
	// Put stores r under name atomically (nothing is visible under name
	// until the whole snapshot and its checksum are stored).
	Put(ctx context.Context, name string, r io.Reader) (Entry, error)
	// List returns the stored snapshots, oldest first.
	List(ctx context.Context) ([]Entry, error)
	// Open reads a snapshot; the reader fails at EOF if the content does
	// not match its stored checksum.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	Delete(ctx context.Context, name string) error
	// PutACL stores, beside snapshot name and before it, the ACL token
	// a restore into another install needs (readable by the owner only,
	// as the snapshot, which holds every token of the cluster already).
	PutACL(ctx context.Context, name string, b []byte) error
	// GetACL reads it; nil, nil when the snapshot has none (taken
	// without ACLs, or by a version that did not store it).
	GetACL(ctx context.Context, name string) ([]byte, error)
	// String names the target for logs (no credentials).
	String() string
}

// aclSuffix names a snapshot's ACL companion: <name>.acl (no snapshot
// name ends so, so List never shows it).
const aclSuffix = ".acl"

// Open returns the target a URI names: file:///dir or http(s)://host/path/.
func Open(uri string) (Target, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("backup target %q: %w", uri, err)
	}
	switch u.Scheme {
	case "file":
		if u.Path == "" || !strings.HasPrefix(u.Path, "/") {
			return nil, fmt.Errorf("backup target %q: a file:// target needs an absolute directory (file:///var/backups/consul)", uri)
		}
		return &fileTarget{dir: u.Path}, nil
	case "http", "https":
		if u.Host == "" {
			return nil, fmt.Errorf("backup target %q names no host", uri)
		}
		return newHTTPTarget(u), nil
	}
	return nil, fmt.Errorf("backup target %q: the scheme must be file, http or https", uri)
}

// namePattern: consul-<dc>-<UTC time>.snap, and nothing else is a name.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.snap$`)

// ValidName reports whether name may name a snapshot (no paths).
func ValidName(name string) bool {
	return namePattern.MatchString(name) && !strings.Contains(name, "..")
}

// Name is the name of a snapshot of datacenter dc taken at t.
func Name(service, dc string, t time.Time) string {
	return fmt.Sprintf("%s-%s-%s.snap", sanitize(service), sanitize(dc), t.UTC().Format("20060102T150405.000Z"))
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// Due reports when the next scheduled snapshot is due after the newest
// stored one (the zero time: none yet, due now).
func Due(newest time.Time, every time.Duration) time.Time {
	if newest.IsZero() {
		return time.Time{}
	}
	return newest.Add(every)
}

// Newest is the time of the newest entry (zero if none).
func Newest(es []Entry) time.Time {
	var t time.Time
	for _, e := range es {
		if e.Taken.After(t) {
			t = e.Taken
		}
	}
	return t
}

// Prune names the entries beyond the keep newest, oldest first.
func Prune(es []Entry, keep int) []string {
	if keep < 1 || len(es) <= keep {
		return nil
	}
	s := append([]Entry(nil), es...)
	sort.SliceStable(s, func(i, j int) bool { return s[i].Taken.Before(s[j].Taken) })
	var out []string
	for _, e := range s[:len(s)-keep] {
		out = append(out, e.Name)
	}
	return out
}

// sortEntries orders entries oldest first (then by name).
func sortEntries(es []Entry) {
	sort.SliceStable(es, func(i, j int) bool {
		if !es[i].Taken.Equal(es[j].Taken) {
			return es[i].Taken.Before(es[j].Taken)
		}
		return es[i].Name < es[j].Name
	})
}
