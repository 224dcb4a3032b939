package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"
)

var bucketKV = []byte("kv")

// FileStore keeps the state in one bbolt file,
// <Dir>/dcos-service-<name>.db. Every write is one bbolt transaction,
// fsynced before it returns, so a crash loses nothing acknowledged; bbolt's
// file lock lets one process at a time open it.
type FileStore struct {
	db   *bolt.DB
	path string
	log  *zap.Logger

	mu     sync.RWMutex // held shared by operations, exclusively by Close
	closed bool
}

// FilePath is the state file of a service in dir.
func FilePath(dir, service string) string {
	return filepath.Join(dir, "dcos-service-"+escapeService(service)+".db")
}

// OpenFile opens (creating if needed) the file store of cfg.Service in
// cfg.Dir, waiting up to cfg.LockWait for another process to release it.
func OpenFile(ctx context.Context, cfg Config) (*FileStore, error) {
	cfg.defaults()
	if err := validateService(cfg.Service); err != nil {
		return nil, err
	}
	if cfg.Dir == "" {
		return nil, errors.New("store: state directory is empty")
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: create state directory: %w", err)
	}
	path := FilePath(cfg.Dir, cfg.Service)
	wait := cfg.LockWait
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, max(0, time.Until(dl)))
		if wait == 0 {
			return nil, fmt.Errorf("store: open %s: %w", path, ctx.Err())
		}
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: wait})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("store: %s: %w: another dcos-consul scheduler has it open (waited %s for its file lock); stop it or use another state directory", path, ErrLocked, wait)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketKV)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: initialise %s: %w", path, err)
	}
	log := cfg.Logger.With(zap.String("store", "file"), zap.String("path", path))
	log.Info("state store opened")
	return &FileStore{db: db, path: path, log: log}, nil
}

// Path is the state file.
func (s *FileStore) Path() string { return s.path }

// begin checks ctx and that the store is open; on nil the caller must call
// s.mu.RUnlock.
func (s *FileStore) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

// Get implements Store.
func (s *FileStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	if err := s.begin(ctx); err != nil {
		return nil, fmt.Errorf("get %q: %w", key, err)
	}
	defer s.mu.RUnlock()
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketKV).Get([]byte(key))
		if v == nil {
			return fmt.Errorf("get %q: %w", key, ErrNotFound)
		}
		out = bytes.Clone(v)
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("get %q from %s: %w", key, s.path, err)
	}
	return out, err
}

// Put implements Store.
func (s *FileStore) Put(ctx context.Context, key string, value []byte) error {
	return s.Apply(ctx, PutOp(key, value))
}

// Delete implements Store.
func (s *FileStore) Delete(ctx context.Context, key string) error {
	return s.Apply(ctx, DeleteOp(key))
}

// Apply implements Store: one bbolt transaction.
func (s *FileStore) Apply(ctx context.Context, ops ...Op) error {
	if len(ops) == 0 {
		return nil
	}
	if err := validateOps(ops); err != nil {
		return err
	}
	if err := s.begin(ctx); err != nil {
		return fmt.Errorf("write %q: %w", ops[0].Key, err)
	}
	defer s.mu.RUnlock()
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKV)
		for _, op := range ops {
			if op.Delete {
				if err := b.Delete([]byte(op.Key)); err != nil {
					return fmt.Errorf("delete %q: %w", op.Key, err)
				}
				continue
			}
			if err := checkLeaf(b, op.Key); err != nil {
				return err
			}
			v := op.Value
			if v == nil {
				v = []byte{} // bbolt stores nil as empty, keep it explicit
			}
			if err := b.Put([]byte(op.Key), v); err != nil {
				return fmt.Errorf("put %q: %w", op.Key, err)
			}
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrInvalidKey) {
			return err
		}
		return fmt.Errorf("write to %s: %w", s.path, err)
	}
	return nil
}

// checkLeaf enforces the leaf rule: no parent of key is a key and no key
// lives under key.
func checkLeaf(b *bolt.Bucket, key string) error {
	for _, p := range parents(key) {
		if b.Get([]byte(p)) != nil {
			return fmt.Errorf("%w: %q: %q is a key, not a directory", ErrInvalidKey, key, p)
		}
	}
	k, _ := b.Cursor().Seek([]byte(key + "/"))
	if k != nil && strings.HasPrefix(string(k), key+"/") {
		return fmt.Errorf("%w: %q: it is a directory (holds %q)", ErrInvalidKey, key, k)
	}
	return nil
}

// List implements Store.
func (s *FileStore) List(ctx context.Context, prefix string) ([]string, error) {
	if err := s.begin(ctx); err != nil {
		return nil, fmt.Errorf("list %q: %w", prefix, err)
	}
	defer s.mu.RUnlock()
	var keys []string
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketKV).Cursor()
		for k, _ := c.Seek([]byte(prefix)); k != nil && bytes.HasPrefix(k, []byte(prefix)); k, _ = c.Next() {
			keys = append(keys, string(k))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %q in %s: %w", prefix, s.path, err)
	}
	sort.Strings(keys) // bbolt's byte order is already sorted; keep the contract explicit
	return keys, nil
}

// Close releases the file and its lock.
func (s *FileStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.log.Info("state store closed")
	return s.db.Close()
}

// Destroy implements Store: it closes the store and removes the state file.
func (s *FileStore) Destroy(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.Close(); err != nil {
		return fmt.Errorf("destroy %s: %w", s.path, err)
	}
	if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("destroy %s: %w", s.path, err)
	}
	s.log.Info("state destroyed")
	return nil
}
