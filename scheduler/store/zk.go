package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/scheduler/credentials"
)

// lockNode is the ephemeral node, under the service node, held by the
// scheduler that owns the state; epochNode is a persistent node whose
// version each new holder of the lock bumps, and every write checks in the
// same transaction (a fencing token: a scheduler that lost the lock without
// noticing yet cannot write). Keys cannot start with "__", so neither
// collides with one.
const (
	lockNode  = "__lock"
	epochNode = "__epoch"
)

// ZKStore keeps the state in ZooKeeper: one node per key under
// /dcos-service-<name> (hierarchical keys are nested nodes; directories are
// created and removed with the keys, in the same multi-op transaction).
//
// The client reconnects by itself after a ZooKeeper restart or a network
// cut; every operation is retried on connection errors until its context's
// deadline (Config.OpTimeout without one). A write whose outcome is unknown
// when the deadline passes returns an error. After a session expiry the
// store takes its lock again before the next operation, and refuses to go
// on (ErrLockLost) if another scheduler took it meanwhile. Every write
// transaction also checks the epoch node's version, so even a write queued
// before the store noticed cannot land after another scheduler took over.
type ZKStore struct {
	conn      *zk.Conn
	root      string // "/dcos-service-consul" (with a chroot prefix if any)
	servers   []string
	log       *zap.Logger
	opTimeout time.Duration
	acl       []zk.ACL
	lockData  []byte
	owner     string

	epoch    atomic.Int32 // version of epochNode set when the lock was taken
	relock   atomic.Bool  // the session expired: take the lock again
	lost     atomic.Bool  // another scheduler holds the lock: refuse everything
	closed   atomic.Bool
	lockMu   sync.Mutex
	lockWait time.Duration
}

type lockInfo struct {
	Owner string `json:"owner"`
	Host  string `json:"host"`
	PID   int    `json:"pid"`
	Since string `json:"since"`
}

// zkDialer lets tests route the client through a proxy.
var zkDialer zk.Dialer

// ParseZK splits a connection string ("h1:2181,h2:2181", optionally with a
// zk:// prefix and a /chroot suffix) into servers and chroot.
func ParseZK(conn string) (servers []string, chroot string, err error) {
	s := strings.TrimPrefix(strings.TrimSpace(conn), "zk://")
	if i := strings.Index(s, "/"); i >= 0 {
		s, chroot = s[:i], strings.TrimRight(s[i:], "/")
	}
	for _, h := range strings.Split(s, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if !strings.Contains(h, ":") {
			h += ":2181"
		}
		servers = append(servers, h)
	}
	if len(servers) == 0 {
		return nil, "", fmt.Errorf("store: ZooKeeper connection string %q names no server", conn)
	}
	if chroot != "" {
		for _, seg := range strings.Split(chroot[1:], "/") {
			if seg == "" || seg == "." || seg == ".." {
				return nil, "", fmt.Errorf("store: ZooKeeper connection string %q: bad chroot %q", conn, chroot)
			}
		}
	}
	return servers, chroot, nil
}

type zkLogger struct{ l *zap.SugaredLogger }

func (z zkLogger) Printf(format string, args ...any) { z.l.Debugf(format, args...) }

// OpenZK connects to ZooKeeper, creates the service node if needed and takes
// the service's lock, waiting up to cfg.LockWait for another scheduler to
// release it.
func OpenZK(ctx context.Context, cfg Config) (*ZKStore, error) {
	cfg.defaults()
	if err := validateService(cfg.Service); err != nil {
		return nil, err
	}
	servers, chroot, err := ParseZK(cfg.ZK)
	if err != nil {
		return nil, err
	}
	owner := randomToken()
	host, _ := os.Hostname()
	lockData, _ := json.Marshal(lockInfo{Owner: owner, Host: host, PID: os.Getpid(), Since: time.Now().UTC().Format(time.RFC3339)})
	s := &ZKStore{
		root:      chroot + ServiceRootPath(cfg.Service),
		servers:   servers,
		opTimeout: cfg.OpTimeout,
		acl:       nodeACL(cfg.ZKAuth),
		lockData:  lockData,
		owner:     owner,
		lockWait:  cfg.LockWait,
	}
	s.log = cfg.Logger.With(zap.String("store", "zookeeper"), zap.Strings("servers", servers), zap.String("node", s.root))
	dialer := zkDialer
	if dialer == nil {
		dialer = net.DialTimeout
	}
	conn, _, err := zk.Connect(servers, cfg.SessionTimeout,
		zk.WithLogger(zkLogger{s.log.Sugar()}),
		zk.WithEventCallback(s.onEvent),
		// Accept what the server may send (its default jute.maxbuffer is
		// 1 MiB) and a little more; never unbounded.
		zk.WithMaxBufferSize(4<<20),
		zk.WithDialer(dialer),
	)
	if err != nil {
		return nil, fmt.Errorf("store: connect to ZooKeeper %v: %w", servers, err)
	}
	s.conn = conn
	if cfg.ZKAuth != nil {
		// go-zookeeper sends it again on every reconnect.
		if err := conn.AddAuth("digest", cfg.ZKAuth.Auth()); err != nil {
			conn.Close()
			return nil, fmt.Errorf("store: authenticate to ZooKeeper as %s: %w", cfg.ZKAuth, err)
		}
		s.log.Info("ZooKeeper digest authentication: the service's nodes are readable and writable by this identity only",
			zap.String("user", cfg.ZKAuth.User))
	}
	if err := s.open(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	s.log.Info("state store opened", zap.Int64("session", conn.SessionID()))
	return s, nil
}

// nodeACL is the ACL of every node the store creates: the digest
// identity alone when there is one, else open to all (ZooKeeper's
// default, and DC/OS's for SDK services).
func nodeACL(auth *credentials.ZK) []zk.ACL {
	if auth == nil {
		return zk.WorldACL(zk.PermAll)
	}
	return zk.DigestACL(zk.PermAll, auth.User, auth.Password)
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *ZKStore) onEvent(ev zk.Event) {
	if ev.Type != zk.EventSession {
		return
	}
	switch ev.State {
	case zk.StateExpired:
		s.relock.Store(true)
		s.log.Warn("ZooKeeper session expired; the lock is taken again before the next operation")
	case zk.StateDisconnected:
		if !s.closed.Load() {
			s.log.Warn("ZooKeeper connection lost; reconnecting", zap.String("server", ev.Server))
		}
	case zk.StateHasSession:
		s.log.Info("ZooKeeper session established", zap.String("server", ev.Server))
	}
}

func (s *ZKStore) open(ctx context.Context) error {
	// Waiting for the lock may take LockWait; connecting must not take
	// longer than the operation timeout.
	err := s.do(ctx, "create "+s.root, false, func() error { return s.ensurePath(s.root) })
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return s.acquire(ctx, s.lockWait)
}

// ensurePath creates p and its parents (empty data) if missing.
func (s *ZKStore) ensurePath(p string) error {
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	cur := ""
	for _, part := range parts {
		cur += "/" + part
		acl := s.acl
		if cur != p {
			// A chroot's parents are not the service's: open, as
			// ZooKeeper would create them.
			acl = zk.WorldACL(zk.PermAll)
		}
		_, err := s.conn.Create(cur, nil, 0, acl)
		if err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("create %s: %w", cur, err)
		}
	}
	return nil
}

// acquire takes the lock node, waiting up to wait for its holder.
func (s *ZKStore) acquire(ctx context.Context, wait time.Duration) error {
	s.lockMu.Lock()
	defer s.lockMu.Unlock()
	lockPath := s.root + "/" + lockNode
	deadline := time.Now().Add(wait)
	var holder []byte
	for {
		var held bool
		err := s.do(ctx, "take lock "+lockPath, false, func() error {
			_, err := s.conn.Create(lockPath, s.lockData, zk.FlagEphemeral, s.acl)
			if err == nil {
				held = true
				return nil
			}
			if !errors.Is(err, zk.ErrNodeExists) {
				return err
			}
			data, _, err := s.conn.Get(lockPath)
			if errors.Is(err, zk.ErrNoNode) {
				return nil // released meanwhile: try again
			}
			if err != nil {
				return err
			}
			var li lockInfo
			_ = json.Unmarshal(data, &li)
			if li.Owner == s.owner {
				held = true // our own create, whose reply was lost
				return nil
			}
			holder = data
			return nil
		})
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if held {
			if err := s.bumpEpoch(ctx); err != nil {
				return err
			}
			s.relock.Store(false)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("store: %s: %w (holder %s); waited %s: stop the other scheduler, or wait for its ZooKeeper session to expire",
				lockPath, ErrLocked, holder, wait)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("store: waiting for %s held by %s: %w", lockPath, holder, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// bumpEpoch advances the epoch node, under the lock, and remembers its
// version: writes of any earlier holder now fail their check.
func (s *ZKStore) bumpEpoch(ctx context.Context) error {
	epochPath := s.root + "/" + epochNode
	return s.do(ctx, "advance "+epochPath, false, func() error {
		st, err := s.conn.Set(epochPath, s.lockData, -1)
		if errors.Is(err, zk.ErrNoNode) {
			if _, err = s.conn.Create(epochPath, s.lockData, 0, s.acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
				return err
			}
			st, err = s.conn.Set(epochPath, s.lockData, -1)
		}
		if err != nil {
			return err
		}
		s.epoch.Store(st.Version)
		return nil
	})
}

// fenced is returned when a write's epoch check failed.
var errFenced = errors.New("epoch check failed")

// checkFence decides, after a failed epoch check, whether our own newer
// epoch explains it (retry) or another scheduler took the lock (lost).
func (s *ZKStore) checkFence() error {
	data, _, err := s.conn.Get(s.root + "/" + epochNode)
	if err != nil {
		return err
	}
	var li lockInfo
	_ = json.Unmarshal(data, &li)
	if li.Owner == s.owner {
		return fmt.Errorf("%w: %v", errReplan, errFenced)
	}
	s.lost.Store(true)
	s.log.Error("another scheduler took the state lock (the epoch moved on); refusing to write", zap.ByteString("holder", data))
	return fmt.Errorf("%w: the state epoch belongs to %s", ErrLockLost, data)
}

// ensureLock takes the lock again after a session expiry; if another
// scheduler holds it, the store is unusable from then on.
func (s *ZKStore) ensureLock(ctx context.Context) error {
	if s.lost.Load() {
		return ErrLockLost
	}
	if !s.relock.Load() {
		return nil
	}
	err := s.acquire(ctx, 0)
	if errors.Is(err, ErrLocked) {
		s.lost.Store(true)
		s.log.Error("another scheduler took the state lock while our ZooKeeper session was expired; refusing to use the state", zap.Error(err))
		return fmt.Errorf("%w: %v", ErrLockLost, err)
	}
	return err
}

func retryable(err error) bool {
	return errors.Is(err, zk.ErrConnectionClosed) || errors.Is(err, zk.ErrNoServer) ||
		errors.Is(err, zk.ErrSessionExpired) || errors.Is(err, zk.ErrSessionMoved)
}

// do runs fn until it succeeds, fails with a non-connection error, or the
// deadline passes. Each call of fn is bounded by the context, so a hung
// request cannot outlive it.
func (s *ZKStore) do(ctx context.Context, what string, checkLock bool, fn func() error) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.opTimeout)
		defer cancel()
	}
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		if s.closed.Load() {
			return fmt.Errorf("%s: %w", what, ErrClosed)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if checkLock {
			if err := s.ensureLock(ctx); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
		ch := make(chan error, 1)
		go func() { ch <- fn() }()
		var err error
		select {
		case err = <-ch:
		case <-ctx.Done():
			// A write may or may not have been applied: the caller must
			// treat it as failed and retry (every write here is idempotent).
			return fmt.Errorf("%s: no reply before the deadline (ZooKeeper connection %s; a write's outcome is unknown): %w", what, s.conn.State(), ctx.Err())
		}
		if err == nil || !retryable(err) {
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			if attempt > 1 {
				s.log.Info("ZooKeeper operation succeeded after retries", zap.String("op", what), zap.Int("attempts", attempt))
			}
			return nil
		}
		if attempt == 1 {
			s.log.Warn("ZooKeeper operation failed; retrying until the deadline", zap.String("op", what), zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: gave up after %d attempts (ZooKeeper connection %s, last error: %v): %w", what, attempt, s.conn.State(), err, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

func (s *ZKStore) nodePath(key string) string { return s.root + "/" + key }

// Get implements Store.
func (s *ZKStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	var out []byte
	err := s.do(ctx, fmt.Sprintf("get %q", key), true, func() error {
		data, stat, err := s.conn.Get(s.nodePath(key))
		if errors.Is(err, zk.ErrNoNode) || (err == nil && stat.NumChildren > 0) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if data == nil {
			data = []byte{}
		}
		out = data
		return nil
	})
	return out, err
}

// Put implements Store.
func (s *ZKStore) Put(ctx context.Context, key string, value []byte) error {
	return s.Apply(ctx, PutOp(key, value))
}

// Delete implements Store.
func (s *ZKStore) Delete(ctx context.Context, key string) error {
	return s.Apply(ctx, DeleteOp(key))
}

// errReplan means the tree changed between planning and the multi (or an
// earlier attempt whose reply was lost did apply): plan again.
var errReplan = errors.New("tree changed during the transaction")

// Apply implements Store: one ZooKeeper multi that creates missing
// directories, sets or creates the keys, deletes keys and the directories
// they leave empty.
func (s *ZKStore) Apply(ctx context.Context, ops ...Op) error {
	if len(ops) == 0 {
		return nil
	}
	if err := validateOps(ops); err != nil {
		return err
	}
	what := fmt.Sprintf("write %q", ops[0].Key)
	if len(ops) > 1 {
		what = fmt.Sprintf("apply %d ops (%q, …)", len(ops), ops[0].Key)
	}
	for replan := 0; ; replan++ {
		err := s.do(ctx, what, true, func() error {
			if len(ops) == 1 && !ops[0].Delete {
				// Fast path, one round trip: most writes update an
				// existing record.
				value := ops[0].Value
				if value == nil {
					value = []byte{}
				}
				res, err := s.conn.Multi(s.fence(), &zk.SetDataRequest{Path: s.nodePath(ops[0].Key), Data: value, Version: -1})
				err = s.multiErr(res, err)
				if err == nil {
					if st := res[1].Stat; st != nil && st.NumChildren > 0 {
						// A directory: the data set on it is never read
						// (and goes with it when it empties).
						return fmt.Errorf("%w: %q: it is a directory", ErrInvalidKey, ops[0].Key)
					}
					return nil
				}
				if !errors.Is(err, errReplan) {
					return err
				}
			}
			reqs, err := s.plan(ops)
			if err != nil || len(reqs) == 0 {
				return err
			}
			return s.multiErr(s.conn.Multi(append([]any{s.fence()}, reqs...)...))
		})
		if errors.Is(err, errReplan) && replan < 10 {
			s.log.Debug("ZooKeeper transaction raced; planning again", zap.String("op", what), zap.Error(err))
			continue
		}
		return err
	}
}

// fence is the epoch check every write transaction starts with.
func (s *ZKStore) fence() *zk.CheckVersionRequest {
	return &zk.CheckVersionRequest{Path: s.root + "/" + epochNode, Version: s.epoch.Load()}
}

// multiErr interprets a multi whose first op is the fence.
func (s *ZKStore) multiErr(res []zk.MultiResponse, err error) error {
	if len(res) > 0 && res[0].Error != nil && !errors.Is(res[0].Error, zk.ErrAPIError) && !isRuntimeInconsistency(res[0].Error) {
		if errors.Is(res[0].Error, zk.ErrBadVersion) {
			return s.checkFence()
		}
		if errors.Is(res[0].Error, zk.ErrNoNode) {
			return fmt.Errorf("the service node %s or its epoch is gone (service uninstalled?): %w", s.root, res[0].Error)
		}
		return res[0].Error
	}
	if len(res) == 0 && errors.Is(err, zk.ErrBadVersion) {
		// The failed op is not identified, but only the fence checks a
		// version (every other op uses -1).
		return s.checkFence()
	}
	return multiErr(res, err)
}

// isRuntimeInconsistency is how ZooKeeper marks the ops of a failed multi
// that did not fail themselves (code -2, unknown to the client library).
func isRuntimeInconsistency(err error) bool {
	return err != nil && strings.Contains(err.Error(), "unknown error: -2")
}

func multiErr(res []zk.MultiResponse, err error) error {
	logical := func(e error) bool {
		return errors.Is(e, zk.ErrNoNode) || errors.Is(e, zk.ErrNodeExists) || errors.Is(e, zk.ErrNotEmpty) || errors.Is(e, zk.ErrBadVersion)
	}
	first := err
	for _, r := range res {
		if r.Error != nil && logical(r.Error) {
			first = r.Error
			break
		}
	}
	if first == nil {
		for _, r := range res {
			if r.Error != nil {
				first = r.Error
				break
			}
		}
	}
	if first == nil {
		return nil
	}
	if logical(first) {
		return fmt.Errorf("%w: %v", errReplan, first)
	}
	return first
}

// plan reads the tree and returns the multi requests for ops. It needs no
// child lists: a node's child count (from its stat), adjusted by the ops
// before it in the batch, tells a directory from a key and an emptied
// directory from one that still holds keys.
func (s *ZKStore) plan(ops []Op) ([]any, error) {
	type node struct {
		exists bool
		kids   int32
	}
	nodes := map[string]*node{}
	var mu sync.Mutex
	fetch := func(key string) (*node, error) {
		ok, st, err := s.conn.Exists(s.nodePath(key))
		if err != nil {
			return nil, err
		}
		n := &node{exists: ok}
		if ok {
			n.kids = st.NumChildren
		}
		return n, nil
	}
	// Stat the keys of the batch concurrently (pipelined on the one
	// connection); parents are shared and read as needed.
	if len(ops) > 1 {
		var wg sync.WaitGroup
		var firstErr error
		sem := make(chan struct{}, 32)
		for _, op := range ops {
			wg.Add(1)
			sem <- struct{}{}
			go func(key string) {
				defer wg.Done()
				defer func() { <-sem }()
				n, err := fetch(key)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
					return
				}
				nodes[key] = n
			}(op.Key)
		}
		wg.Wait()
		if firstErr != nil {
			return nil, firstErr
		}
	}
	stat := func(key string) (*node, error) {
		if n, ok := nodes[key]; ok {
			return n, nil
		}
		n, err := fetch(key)
		if err != nil {
			return nil, err
		}
		nodes[key] = n
		return n, nil
	}
	var reqs []any
	for _, op := range ops {
		n, err := stat(op.Key)
		if err != nil {
			return nil, err
		}
		if op.Delete {
			if !n.exists || n.kids > 0 {
				continue // missing, or a directory (not a key)
			}
			reqs = append(reqs, &zk.DeleteRequest{Path: s.nodePath(op.Key), Version: -1})
			n.exists = false
			// Remove the directories this leaves empty, deepest first.
			ps := parents(op.Key)
			for i := len(ps) - 1; i >= 0; i-- {
				pn, err := stat(ps[i])
				if err != nil {
					return nil, err
				}
				pn.kids--
				if pn.kids > 0 || !pn.exists {
					break
				}
				reqs = append(reqs, &zk.DeleteRequest{Path: s.nodePath(ps[i]), Version: -1})
				pn.exists = false
			}
			continue
		}
		if n.kids > 0 {
			return nil, fmt.Errorf("%w: %q: it is a directory", ErrInvalidKey, op.Key)
		}
		value := op.Value
		if value == nil {
			value = []byte{}
		}
		if n.exists {
			reqs = append(reqs, &zk.SetDataRequest{Path: s.nodePath(op.Key), Data: value, Version: -1})
			continue
		}
		var creates []any
		ps := parents(op.Key)
		for i := len(ps) - 1; i >= 0; i-- {
			pn, err := stat(ps[i])
			if err != nil {
				return nil, err
			}
			if pn.exists && pn.kids == 0 {
				return nil, fmt.Errorf("%w: %q: %q is a key, not a directory", ErrInvalidKey, op.Key, ps[i])
			}
			pn.kids++
			if pn.exists {
				break
			}
			creates = append([]any{&zk.CreateRequest{Path: s.nodePath(ps[i]), Data: nil, Acl: s.acl}}, creates...)
			pn.exists = true
		}
		reqs = append(reqs, creates...)
		reqs = append(reqs, &zk.CreateRequest{Path: s.nodePath(op.Key), Data: value, Acl: s.acl})
		n.exists = true
	}
	return reqs, nil
}

// List implements Store: a walk of the tree under the service node, the
// children of each directory read concurrently (the client pipelines them
// on its one connection).
func (s *ZKStore) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	err := s.do(ctx, fmt.Sprintf("list %q", prefix), true, func() error {
		var (
			mu       sync.Mutex
			found    []string
			firstErr error
			wg       sync.WaitGroup
			sem      = make(chan struct{}, 32)
		)
		fail := func(err error) {
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		}
		var walk func(rel string)
		walk = func(rel string) {
			defer wg.Done()
			sem <- struct{}{}
			p := s.root
			if rel != "" {
				p += "/" + rel
			}
			kids, st, err := s.conn.Children(p)
			<-sem
			if errors.Is(err, zk.ErrNoNode) {
				return
			}
			if err != nil {
				fail(err)
				return
			}
			if st.NumChildren == 0 && rel != "" {
				// A leaf is a key (directories never stay empty).
				if strings.HasPrefix(rel, prefix) {
					mu.Lock()
					found = append(found, rel)
					mu.Unlock()
				}
				return
			}
			for _, k := range kids {
				child := k
				if rel != "" {
					child = rel + "/" + k
				} else if strings.HasPrefix(k, "__") {
					continue // the lock node
				}
				// Descend only where keys with the prefix can be.
				if !strings.HasPrefix(child, prefix) && !strings.HasPrefix(prefix, child+"/") {
					continue
				}
				wg.Add(1)
				go walk(child)
			}
		}
		// Start at the deepest directory the prefix names in full.
		start := ""
		if i := strings.LastIndex(prefix, "/"); i >= 0 {
			start = prefix[:i]
		}
		wg.Add(1)
		walk(start)
		wg.Wait()
		if firstErr != nil {
			return firstErr
		}
		keys = found
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(keys)
	return keys, nil
}

// Close releases the lock (deleting it, so a successor needs not wait for
// the session to expire) and the connection.
func (s *ZKStore) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if !s.lost.Load() {
		// Best effort, bounded: if ZooKeeper is away the node goes with the
		// session anyway.
		done := make(chan struct{})
		go func() {
			defer close(done)
			lockPath := s.root + "/" + lockNode
			if data, st, err := s.conn.Get(lockPath); err == nil {
				var li lockInfo
				if json.Unmarshal(data, &li) == nil && li.Owner == s.owner {
					_ = s.conn.Delete(lockPath, st.Version)
				}
			}
		}()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
		}
	}
	s.conn.Close()
	s.log.Info("state store closed")
	return nil
}

// Destroy implements Store: it deletes the service node and everything
// under it, the lock last, then closes the store. It is fenced like any
// write: a scheduler that lost the lock cannot destroy the state.
func (s *ZKStore) Destroy(ctx context.Context) error {
	err := s.do(ctx, "destroy "+s.root, true, func() error {
		// Check the fence first, then delete the tree bottom-up.
		if _, err := s.conn.Multi(s.fence()); err != nil {
			if errors.Is(err, zk.ErrBadVersion) {
				return s.checkFence()
			}
			if !errors.Is(err, zk.ErrNoNode) {
				return err
			}
		}
		var del func(p string) error
		del = func(p string) error {
			kids, _, err := s.conn.Children(p)
			if errors.Is(err, zk.ErrNoNode) {
				return nil
			}
			if err != nil {
				return err
			}
			for _, k := range kids {
				if p == s.root && k == lockNode {
					continue
				}
				if err := del(p + "/" + k); err != nil {
					return err
				}
			}
			if p == s.root {
				if err := s.conn.Delete(p+"/"+lockNode, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
					return err
				}
			}
			if err := s.conn.Delete(p, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
				return err
			}
			return nil
		}
		return del(s.root)
	})
	if err != nil {
		return err
	}
	s.log.Info("state destroyed")
	return s.Close()
}
