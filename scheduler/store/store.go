// Package store is where the scheduler keeps its state (framework ID, target
// configuration, one record per task, …): a small key-value interface with
// two implementations, an embedded file store (bbolt; the default in dev and
// outside DC/OS) and ZooKeeper (what DC/OS schedulers use, a node per
// service: /dcos-service-<name>).
//
// The scheduler writes before it acts, so a write either returns nil and is
// durable, or returns an error; Apply writes several keys atomically.
//
// Keys are '/'-separated paths such as "tasks/consul-server-0". A key is a
// leaf: "tasks" and "tasks/x" cannot both be keys (ZooKeeper would have to
// store a value on a node that also holds children, and an empty directory
// could not be told from an empty value).
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/scheduler/credentials"
)

// MaxValueSize is the largest value either store accepts: ZooKeeper's
// default jute.maxbuffer is 1 MiB per packet, and this leaves room for the
// path and the request framing. Both stores enforce it so that a scheduler
// that works on the file store also works on ZooKeeper.
const MaxValueSize = 1000 * 1000

// MaxApplySize bounds the sum of values, keys and a per-op allowance for
// framing and the service path in one Apply (see OpSize): one ZooKeeper
// multi is one packet, at most 1,048,575 bytes by default.
const MaxApplySize = 1040 * 1000

const maxApplySize = MaxApplySize

// OpSize is what op counts against MaxApplySize in one Apply.
func OpSize(op Op) int { return len(op.Key) + len(op.Value) + opOverhead }

// opOverhead is the per-op allowance: op header, ACL, version and the
// service node path (service names are at most 200 bytes).
const opOverhead = 256 + 64

var (
	// ErrNotFound is returned (wrapped) by Get for a missing key.
	ErrNotFound = errors.New("key not found")
	// ErrTooLarge is returned for a value or an Apply above the limits.
	ErrTooLarge = errors.New("value too large")
	// ErrInvalidKey is returned for a malformed key or one that conflicts
	// with an existing key (a leaf used as a directory or the reverse).
	ErrInvalidKey = errors.New("invalid key")
	// ErrLocked is returned by Open when another scheduler holds the state.
	ErrLocked = errors.New("state is locked by another scheduler")
	// ErrLockLost is returned after the ZooKeeper session that held the lock
	// expired and another scheduler took the lock meanwhile.
	ErrLockLost = errors.New("state lock lost to another scheduler")
	// ErrClosed is returned by operations on a closed store.
	ErrClosed = errors.New("store is closed")
)

// Store is the scheduler's state store.
type Store interface {
	// Get returns the value of key, or an error wrapping ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Put writes key; nil means durable.
	Put(ctx context.Context, key string, value []byte) error
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List returns the keys starting with prefix, sorted. The prefix is a
	// plain string prefix ("tasks/" lists every task record; "" every key).
	List(ctx context.Context, prefix string) ([]string, error)
	// Apply performs ops atomically: all of them or none.
	Apply(ctx context.Context, ops ...Op) error
	// Destroy removes the service's whole state (the ZooKeeper node with
	// its lock, or the state file) and closes the store: the last step of
	// an uninstall.
	Destroy(ctx context.Context) error
	Close() error
}

// Op is one write of an Apply.
type Op struct {
	Key    string
	Value  []byte
	Delete bool
}

// PutOp writes key.
func PutOp(key string, value []byte) Op { return Op{Key: key, Value: value} }

// DeleteOp removes key (missing is fine).
func DeleteOp(key string) Op { return Op{Key: key, Delete: true} }

// Config selects and configures a store.
type Config struct {
	// ZK is a ZooKeeper connection string ("master.mesos:2181",
	// "zk-1:2181,zk-2:2181", or with a zk:// prefix). Set: ZooKeeper store.
	ZK string
	// Dir is the file store's directory, used when ZK is empty.
	Dir string
	// Service is the service name; it names the ZooKeeper node
	// (/dcos-service-<name>) and the state file.
	Service string
	Logger  *zap.Logger
	// LockWait bounds how long Open waits for another scheduler to release
	// the state (default 30 s: longer than a dead scheduler's ZooKeeper
	// session timeout).
	LockWait time.Duration
	// SessionTimeout is the ZooKeeper session timeout (default 10 s).
	SessionTimeout time.Duration
	// OpTimeout bounds one ZooKeeper operation, retries included, when the
	// context has no deadline (default 60 s).
	OpTimeout time.Duration
	// ZKAuth, when set, is the digest identity the ZooKeeper store
	// authenticates with (addAuth "digest"); every node it creates then
	// carries a digest ACL giving that identity alone every permission.
	ZKAuth *credentials.ZK
}

func (c *Config) defaults() {
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.LockWait <= 0 {
		c.LockWait = 30 * time.Second
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.OpTimeout <= 0 {
		c.OpTimeout = 60 * time.Second
	}
}

// Open opens the ZooKeeper store if cfg.ZK is set, else the file store in
// cfg.Dir.
func Open(ctx context.Context, cfg Config) (Store, error) {
	if err := validateService(cfg.Service); err != nil {
		return nil, err
	}
	switch {
	case cfg.ZK != "":
		return OpenZK(ctx, cfg)
	case cfg.Dir != "":
		return OpenFile(ctx, cfg)
	default:
		return nil, errors.New("store: neither a ZooKeeper connection string nor a state directory is configured")
	}
}

// ServiceRootPath is the ZooKeeper node of a service, named as the DC/OS SDK
// does: one leading '/' dropped, other slashes escaped as "__"
// ("/prod/consul" → "/dcos-service-prod__consul").
func ServiceRootPath(service string) string {
	return "/dcos-service-" + escapeService(service)
}

func escapeService(service string) string {
	return strings.ReplaceAll(strings.TrimPrefix(service, "/"), "/", "__")
}

func validateService(service string) error {
	s := escapeService(service)
	if s == "" {
		return errors.New("store: service name is empty")
	}
	if len(s) > 200 {
		return fmt.Errorf("store: service name %q is longer than 200 bytes", service)
	}
	for _, r := range s {
		if !keyChar(r) {
			return fmt.Errorf("store: service name %q: character %q not allowed", service, r)
		}
	}
	return nil
}

func keyChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		strings.ContainsRune("-_.:@+=,", r)
}

// ValidateKey checks a key: '/'-separated non-empty segments of
// [A-Za-z0-9-_.:@+=,], not "." or "..", not starting with "__" (reserved),
// at most 512 bytes.
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	}
	if len(key) > 512 {
		return fmt.Errorf("%w: key of %d bytes (at most 512)", ErrInvalidKey, len(key))
	}
	if strings.HasPrefix(key, "__") {
		return fmt.Errorf("%w: %q: keys starting with __ are reserved", ErrInvalidKey, key)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w: %q: empty, '.' or '..' path segment", ErrInvalidKey, key)
		}
		for _, r := range seg {
			if !keyChar(r) {
				return fmt.Errorf("%w: %q: character %q not allowed", ErrInvalidKey, key, r)
			}
		}
	}
	return nil
}

func validateValue(key string, v []byte) error {
	if len(v) > MaxValueSize {
		return fmt.Errorf("put %q: %w: %d bytes, at most %d", key, ErrTooLarge, len(v), MaxValueSize)
	}
	return nil
}

func validateOps(ops []Op) error {
	total := 0
	seen := map[string]bool{}
	for _, op := range ops {
		if err := ValidateKey(op.Key); err != nil {
			return err
		}
		if seen[op.Key] {
			return fmt.Errorf("%w: %q appears twice in one Apply", ErrInvalidKey, op.Key)
		}
		seen[op.Key] = true
		if !op.Delete {
			if err := validateValue(op.Key, op.Value); err != nil {
				return err
			}
		}
		total += OpSize(op)
	}
	if total > maxApplySize {
		return fmt.Errorf("apply of %d ops: %w: %d bytes in one transaction, at most %d", len(ops), ErrTooLarge, total, maxApplySize)
	}
	return nil
}

// parents returns the proper prefixes of key at '/' boundaries:
// "a/b/c" → ["a", "a/b"].
func parents(key string) []string {
	var out []string
	for i := 0; i < len(key); i++ {
		if key[i] == '/' {
			out = append(out, key[:i])
		}
	}
	return out
}
