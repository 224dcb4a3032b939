package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/consulacl"
	"github.com/dcos-consul/dcos-consul/scheduler/secrets"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// KeyringRotatePath rotates the gossip key (POST, operator token).
const KeyringRotatePath = "/v1/keyring/rotate"

// RotationResult is what a rotation answers: fingerprints, never keys.
type RotationResult struct {
	Primary string   `json:"primary"`
	Removed []string `json:"removed"`
	Via     string   `json:"via"`
}

// rotateGossipKey installs a new gossip key on every agent, switches every
// agent to it and removes the old ones, storing each step's outcome first:
//
//  1. store the new key as RotatingTo (agents launched from now on get
//     both keys in their keyring);
//  2. Consul: install it everywhere, then use it everywhere;
//  3. store it as the primary (new agents encrypt with it);
//  4. Consul: remove the old keys everywhere;
//  5. store the new key alone.
//
// Every Consul step is idempotent, so a rotation interrupted anywhere (a
// failed call, a scheduler crash) is resumed from the stored document by
// the next call or the next scheduler start. Gossip between agents never
// stops: an agent always holds the key the others send with.
func (s *Scheduler) rotateGossipKey(ctx context.Context) (RotationResult, error) {
	s.rotateMu.Lock()
	defer s.rotateMu.Unlock()
	if !s.Snapshot().Target.GossipEncryption {
		return RotationResult{}, errors.New("gossip encryption is off for this service: there is no key to rotate")
	}
	if n := s.Snapshot().Target.GossipPhaseNumber(); n > 0 {
		return RotationResult{}, fmt.Errorf("gossip encryption is being turned on (phase %d of %d, the update plan): rotate the key once that is complete", n, state.GossipPhases)
	}
	if cur := s.secrets.Get(); s.cfg.GossipKeyFile != "" && cur.RotatingTo == "" {
		// A random key here would differ from the other datacenters'.
		return RotationResult{}, errors.New("the gossip key is the one federated datacenters share (security.gossip_encryption.key_secret): put the new key in that secret (file) of every datacenter and restart their schedulers, which rotate to it")
	}
	cur := s.secrets.Get()
	if cur.GossipKey() == "" {
		return RotationResult{}, errors.New("the scheduler holds no gossip key")
	}
	next, changed, err := secrets.BeginRotation(cur, s.opts.Rand)
	if err != nil {
		return RotationResult{}, err
	}
	if changed {
		if err := s.saveSecrets(ctx, next); err != nil {
			return RotationResult{}, err
		}
		s.log.Info("gossip key rotation: new key stored", zap.String("new", config.Fingerprint(next.RotatingTo)))
	} else {
		s.log.Info("gossip key rotation: resuming", zap.String("new", config.Fingerprint(next.RotatingTo)))
	}
	key := next.RotatingTo
	// Consul applies keyring changes to every federated datacenter: with a
	// shared key, another datacenter's scheduler may have done the steps
	// already (and this datacenter's local token could not do them in the
	// others). What this datacenter's agents hold decides.
	var lan keyringState
	if _, err := s.onAServer(ctx, func(op *consulapi.Operator) error {
		rings, err := op.KeyringList((&consulapi.QueryOptions{LocalOnly: true}).WithContext(ctx))
		lan = lanKeyring(rings, s.Snapshot().Target.Datacenter)
		return err
	}); err != nil {
		s.log.Info("gossip key rotation: this datacenter's keyring could not be read; doing every step", zap.Error(err))
	}
	via, err := s.onAServer(ctx, func(op *consulapi.Operator) error {
		if lan.primaryEverywhere(key) {
			return nil
		}
		wo := (&consulapi.WriteOptions{}).WithContext(ctx)
		if err := op.KeyringInstall(key, wo); err != nil {
			return fmt.Errorf("install the new key: %w", err)
		}
		if err := op.KeyringUse(key, wo); err != nil {
			return fmt.Errorf("switch to the new key: %w", err)
		}
		return nil
	})
	if err != nil {
		return RotationResult{}, err
	}
	next = secrets.PromoteRotation(next)
	if err := s.saveSecrets(ctx, next); err != nil {
		return RotationResult{}, err
	}
	var removed []string
	for _, old := range next.GossipKeys[1:] {
		old := old
		if lan.gone(old) {
			removed = append(removed, config.Fingerprint(old))
			continue
		}
		if _, err := s.onAServer(ctx, func(op *consulapi.Operator) error {
			if err := op.KeyringRemove(old, (&consulapi.WriteOptions{}).WithContext(ctx)); err != nil {
				return fmt.Errorf("remove an old key: %w", err)
			}
			return nil
		}); err != nil {
			return RotationResult{}, err
		}
		removed = append(removed, config.Fingerprint(old))
	}
	next = secrets.FinishRotation(next)
	if err := s.saveSecrets(ctx, next); err != nil {
		return RotationResult{}, err
	}
	s.log.Info("gossip key rotated: every agent uses the new key, the old ones are removed",
		zap.String("primary", config.Fingerprint(key)), zap.Strings("removed", removed), zap.String("via", via))
	return RotationResult{Primary: config.Fingerprint(key), Removed: removed, Via: via}, nil
}

// saveSecrets writes the secrets through the loop (which owns the store),
// then makes them current and asks the servers to refresh the copy on
// their volumes. Never while the secrets are lost: the interim ones must
// not be stored.
func (s *Scheduler) saveSecrets(ctx context.Context, sec secrets.Secrets) error {
	if why := s.secrets.Lost(); why != "" {
		return errors.New(lostSecretsWhy(why))
	}
	if err := s.writeSecrets(ctx, sec); err != nil {
		return err
	}
	s.secrets.Set(sec)
	s.refreshCopies(ctx)
	return nil
}

// writeSecrets writes the secrets through the loop.
func (s *Scheduler) writeSecrets(ctx context.Context, sec secrets.Secrets) error {
	b, err := json.Marshal(sec)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	f := func() {
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		done <- s.store.Put(wctx, secrets.Key, b)
	}
	select {
	case s.cmds <- f:
	case <-s.done:
		return errStopping
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("write the secrets: %w", err)
		}
	case <-s.done:
		return errStopping
	}
	return nil
}

// onAServer runs f against the first running server that succeeds, with
// the scheduler's ACL token, and returns its address.
func (s *Scheduler) onAServer(ctx context.Context, f func(*consulapi.Operator) error) (string, error) {
	token := s.secrets.Get().SchedulerToken
	if s.aclTokensWithheld() {
		token = "" // ACLs being turned on, not bootstrapped yet: default allow
	}
	return s.onAServerAddr(ctx, func(addr string) error {
		cl, err := consulacl.Client(addr, token)
		if err != nil {
			return err
		}
		return f(cl.Operator())
	})
}

// keyringHandler serves POST KeyringRotatePath (RequireOperator has
// checked the operator token).
func (s *Scheduler) keyringHandler(w http.ResponseWriter, r *http.Request) {
	rotationHandler(w, r, KeyringRotatePath, "the gossip key", 3*time.Minute, func(ctx context.Context) (any, error) {
		return s.rotateGossipKey(ctx)
	})
}

// rotationHandler serves a POST that runs a resumable rotation: its
// result as JSON, 409 with the reason when a step failed (run it again to
// resume), 405 for any other method.
func rotationHandler(w http.ResponseWriter, r *http.Request, path, what string, timeout time.Duration, rotate func(context.Context) (any, error)) {
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		w.WriteHeader(http.StatusMethodNotAllowed)
		_ = json.NewEncoder(w).Encode(map[string]any{"code": 405, "error": "Method Not Allowed", "message": "POST " + path + " rotates " + what})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	res, err := rotate(ctx)
	if err != nil {
		w.WriteHeader(http.StatusConflict)
		_ = json.NewEncoder(w).Encode(map[string]any{"code": 409, "error": "Conflict",
			"message": "rotation of " + what + " not finished (run it again to resume): " + err.Error()})
		return
	}
	_ = json.NewEncoder(w).Encode(res)
}

// resumeRotation finishes a rotation a previous scheduler left half done,
// once servers run.
func (s *Scheduler) resumeRotation(ctx context.Context) {
	if s.secrets.Get().RotatingTo == "" {
		return
	}
	for {
		if _, err := s.rotateGossipKey(ctx); err == nil {
			return
		} else {
			s.log.Warn("gossip key rotation left unfinished by a previous scheduler: retrying", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Second):
		}
	}
}

// keyringState is what one datacenter's LAN keyring holds: the nodes
// each key is installed on, the nodes it is the primary on, of how many
// nodes; known is false when it could not be read.
type keyringState struct {
	known         bool
	keys, primary map[string]int
	nodes         int
}

// lanKeyring picks dc's LAN ring from a keyring listing.
func lanKeyring(rings []*consulapi.KeyringResponse, dc string) keyringState {
	for _, r := range rings {
		if r == nil || r.WAN || r.Segment != "" || r.Partition != "" || r.Datacenter != dc || r.NumNodes == 0 {
			continue
		}
		return keyringState{known: true, keys: r.Keys, primary: r.PrimaryKeys, nodes: r.NumNodes}
	}
	return keyringState{}
}

// primaryEverywhere: every node encrypts with key already.
func (k keyringState) primaryEverywhere(key string) bool {
	return k.known && k.primary[key] == k.nodes && k.keys[key] == k.nodes
}

// gone: no node holds key any more.
func (k keyringState) gone(key string) bool { return k.known && k.keys[key] == 0 }
