package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/executor/consulagent"
	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/backup"
)

// snapshotSyncEvery is how often a server's executor reports the snapshot
// copies on its volume to the scheduler and fetches the newest one.
const snapshotSyncEvery = 15 * time.Second

// snapshotSync keeps copies of the scheduler's Consul snapshots on a
// server's persistent volume (<data dir>/snapshots), atomically with their
// checksums, and uploads one when a restore asks for it. It talks to the
// scheduler with the task's credential (as for its secrets).
type snapshotSync struct {
	client *http.Client
	ref    taskspec.SecretsRef
	taskID string
	vol    backup.Target
	log    *zap.Logger
}

// startSnapshotSync runs the sync of a running server until ctx ends; a
// task without a scheduler reference (no secrets) has none.
func startSnapshotSync(ctx context.Context, spec taskspec.Spec, env consulagent.Env, taskID string, log *zap.Logger) {
	if spec.Role != taskspec.RoleServer || spec.Secrets == nil {
		return
	}
	dataDir, err := consulagent.DataDir(spec, env.Sandbox)
	if err == nil {
		dataDir, err = filepath.Abs(dataDir)
	}
	if err != nil {
		log.Warn("no snapshot copies on this volume", zap.Error(err))
		return
	}
	vol, err := backup.Open("file://" + filepath.Join(dataDir, backup.VolumeDir))
	if err != nil {
		log.Warn("no snapshot copies on this volume", zap.Error(err))
		return
	}
	client, err := channelClient(spec.Secrets.URL, spec.Secrets.CACert)
	if err != nil {
		log.Warn("no snapshot copies on this volume", zap.Error(err))
		return
	}
	ss := &snapshotSync{client: client, ref: *spec.Secrets, taskID: taskID, vol: vol, log: log.Named("snapshots")}
	go ss.run(ctx)
}

func (ss *snapshotSync) run(ctx context.Context) {
	t := time.NewTicker(snapshotSyncEvery)
	defer t.Stop()
	for {
		if err := ss.once(ctx); err != nil && ctx.Err() == nil {
			ss.log.Info("snapshot copies: not in sync yet; retrying", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// once reports, fetches the newest snapshot if missing, prunes to the
// scheduler's keep, uploads a copy a restore waits for, and reports again
// when anything changed.
func (ss *snapshotSync) once(ctx context.Context) error {
	off, err := ss.report(ctx)
	if err != nil {
		return err
	}
	changed := false
	if off.Latest != nil && !ss.has(ctx, *off.Latest) {
		if err := ss.fetch(ctx, *off.Latest); err != nil {
			return err
		}
		changed = true
	}
	if off.Keep > 0 {
		gone, err := backup.KeepNewest(ctx, ss.vol, off.Keep)
		if err != nil {
			return fmt.Errorf("prune the copies on the volume: %w", err)
		}
		if len(gone) > 0 {
			ss.log.Info("old snapshot copies deleted from the volume", zap.Strings("names", gone), zap.Int("keep", off.Keep))
			changed = true
		}
	}
	if off.Upload != "" {
		if err := ss.upload(ctx, off.Upload); err != nil {
			return err
		}
	}
	if changed {
		_, err = ss.report(ctx)
	}
	return err
}

func (ss *snapshotSync) has(ctx context.Context, e backup.Entry) bool {
	es, err := ss.vol.List(ctx)
	if err != nil {
		return false
	}
	for _, h := range es {
		if h.Name == e.Name && h.SHA256 == e.SHA256 {
			return true
		}
	}
	return false
}

func (ss *snapshotSync) url(name string) string {
	u := strings.TrimRight(ss.ref.URL, "/") + backup.ExecutorPath
	if name != "" {
		u += "/" + url.PathEscape(name)
	}
	return u + "?task_id=" + url.QueryEscape(ss.taskID)
}

func (ss *snapshotSync) do(ctx context.Context, method, name string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, ss.url(name), body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+ss.ref.Token)
	resp, err := ss.client.Do(req)
	if err != nil {
		return nil, channelError(err, ss.ref.Token)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("%s %s: %s: %s", method, backup.ExecutorPath, resp.Status, strings.TrimSpace(string(b)))
	}
	return resp, nil
}

func (ss *snapshotSync) report(ctx context.Context) (backup.Offer, error) {
	have, err := ss.vol.List(ctx)
	if err != nil {
		return backup.Offer{}, err
	}
	if have == nil {
		have = []backup.Entry{}
	}
	b, _ := json.Marshal(backup.Report{Have: have})
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := ss.do(rctx, http.MethodPost, "", strings.NewReader(string(b)))
	if err != nil {
		return backup.Offer{}, err
	}
	defer resp.Body.Close()
	var off backup.Offer
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&off); err != nil {
		return backup.Offer{}, fmt.Errorf("the scheduler's offer: %w", err)
	}
	return off, nil
}

// fetch downloads e and stores it atomically with its checksum; a copy
// whose checksum is not the scheduler's is deleted.
func (ss *snapshotSync) fetch(ctx context.Context, e backup.Entry) error {
	fctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	resp, err := ss.do(fctx, http.MethodGet, e.Name, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, err := ss.vol.Put(fctx, e.Name, resp.Body)
	if err != nil {
		return fmt.Errorf("write snapshot %s on the volume: %w", e.Name, err)
	}
	if got.SHA256 != e.SHA256 {
		_ = ss.vol.Delete(ctx, e.Name)
		return fmt.Errorf("snapshot %s: downloaded SHA-256 %s, the scheduler's is %s: deleted", e.Name, got.SHA256, e.SHA256)
	}
	ss.log.Info("snapshot copied onto the volume", zap.String("name", e.Name), zap.Int64("bytes", got.Size), zap.String("sha256", got.SHA256))
	return nil
}

// upload sends a copy to the scheduler for a restore (checked against
// its checksum as it is read).
func (ss *snapshotSync) upload(ctx context.Context, name string) error {
	rd, err := ss.vol.Open(ctx, name)
	if err != nil {
		return err
	}
	defer rd.Close()
	uctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	resp, err := ss.do(uctx, http.MethodPut, name, rd)
	if err != nil {
		return fmt.Errorf("upload snapshot %s for a restore: %w", name, err)
	}
	resp.Body.Close()
	ss.log.Warn("snapshot copy uploaded to the scheduler for a restore", zap.String("name", name))
	return nil
}
