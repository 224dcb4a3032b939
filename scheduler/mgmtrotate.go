package scheduler

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/consulacl"
	"github.com/dcos-consul/dcos-consul/scheduler/consulclient"
	"github.com/dcos-consul/dcos-consul/scheduler/secrets"
)

// ManagementRotatePath rotates the Consul ACL management token (POST,
// operator token).
const ManagementRotatePath = "/v1/acl/management-token/rotate"

// ManagementRotation is what a rotation answers: Consul's accessor of
// nothing secret, only what happened.
type ManagementRotation struct {
	Created bool   `json:"created"`
	Deleted bool   `json:"deleted"`
	Via     string `json:"via"`
	Message string `json:"message"`
}

// rotateManagementToken replaces the ACL management token, storing each
// step's outcome first:
//
//  1. store a new secret as ManagementNext;
//  2. Consul: create a global-management token with it (with the old);
//  3. store it as the management token, the old one as ManagementOld;
//  4. Consul: delete the old token (with the new);
//  5. store that the old one is gone.
//
// Both Consul steps are idempotent, so a rotation interrupted anywhere
// is resumed from the stored document by the next call or the next
// scheduler start, and the stored management token works at every
// moment. Snapshots taken before keep the old token beside them (.acl),
// which is what a restore of their ACL state needs.
func (s *Scheduler) rotateManagementToken(ctx context.Context) (ManagementRotation, error) {
	s.rotateMu.Lock()
	defer s.rotateMu.Unlock()
	if !s.Snapshot().Target.ACL {
		return ManagementRotation{}, errors.New("ACLs are off for this service: there is no management token to rotate")
	}
	if s.aclTokensWithheld() {
		return ManagementRotation{}, errors.New("ACLs are being turned on and not bootstrapped yet (phase 1 of the ACL rollout, update plan): the management token does not exist in Consul yet; rotate it once phase 2 has started")
	}
	next, changed, err := secrets.BeginManagementRotation(s.secrets.Get(), s.opts.Rand)
	if err != nil {
		return ManagementRotation{}, err
	}
	if changed {
		if err := s.saveSecrets(ctx, next); err != nil {
			return ManagementRotation{}, err
		}
		s.log.Info("management token rotation: new secret stored")
	}
	var res ManagementRotation
	if next.ManagementNext != "" {
		res.Via, err = s.onAServerAddr(ctx, func(addr string) error {
			// A secondary datacenter's management token is local to it.
			created, e := consulacl.EnsureManagementIn(ctx, addr, next.ManagementToken, next.ManagementNext, s.Snapshot().Target.Secondary)
			res.Created = res.Created || created
			return e
		})
		if err != nil {
			return res, err
		}
		next = secrets.PromoteManagement(next)
		if err := s.saveSecrets(ctx, next); err != nil {
			return res, err
		}
	}
	res.Via, err = s.onAServerAddr(ctx, func(addr string) error {
		deleted, e := consulacl.DeleteBySecret(ctx, addr, next.ManagementToken, next.ManagementOld)
		res.Deleted = res.Deleted || deleted
		return e
	})
	if err != nil {
		return res, err
	}
	if err := s.saveSecrets(ctx, secrets.FinishManagement(next)); err != nil {
		return res, err
	}
	res.Message = "the management token is rotated: the old one no longer works; read the new one with `acl management-token`"
	s.log.Info("management token rotated", zap.Bool("created", res.Created), zap.Bool("old_deleted", res.Deleted), zap.String("via", res.Via))
	return res, nil
}

// onAServerAddr runs f with the address of each running server in turn
// until one succeeds, and returns that address.
func (s *Scheduler) onAServerAddr(ctx context.Context, f func(addr string) error) (string, error) {
	v := s.Snapshot()
	var last error = errors.New("no Consul server is running")
	for _, t := range v.Tasks {
		addr, ok := consulclient.Addr(t.IP, v.Target.Ports)
		if t.Role != taskspec.RoleServer || !t.Running() || !ok {
			continue
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if err := f(addr); err != nil {
			last = fmt.Errorf("%s: %w", addr, err)
			continue
		}
		return addr, nil
	}
	return "", last
}

// managementRotateHandler serves POST ManagementRotatePath (RequireOperator
// has checked the operator token).
func (s *Scheduler) managementRotateHandler(w http.ResponseWriter, r *http.Request) {
	rotationHandler(w, r, ManagementRotatePath, "the ACL management token", 2*time.Minute, func(ctx context.Context) (any, error) {
		return s.rotateManagementToken(ctx)
	})
}

// resumeManagementRotation finishes a rotation a previous scheduler left
// half done.
func (s *Scheduler) resumeManagementRotation(ctx context.Context) {
	sec := s.secrets.Get()
	if sec.ManagementNext == "" && sec.ManagementOld == "" {
		return
	}
	for {
		_, err := s.rotateManagementToken(ctx)
		if err == nil {
			return
		}
		s.log.Warn("management token rotation left unfinished by a previous scheduler: retrying", zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
}
