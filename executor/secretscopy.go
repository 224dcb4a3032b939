package executor

// The copy of the scheduler's secrets on a server's persistent volume
// (docs/security.md, "Lost scheduler state"): written when the server's
// executor receives its secrets, presented to a scheduler that lost its
// state when it asks (MESSAGE) or when it answers the secrets route with
// taskspec.SecretsLost.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/dcos-consul/dcos-consul/internal/ownerfile"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/executor/consulagent"
	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

// copyPath is where a server task keeps the copy: in its data directory,
// on the persistent volume, next to the raft data that already holds
// every ACL secret.
func copyPath(spec taskspec.Spec, sandbox string) (string, error) {
	if spec.Role != taskspec.RoleServer {
		return "", errors.New("only a server keeps the secrets copy")
	}
	dir, err := consulagent.DataDir(spec, sandbox)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, taskspec.SecretsCopyFile), nil
}

// writeCopy writes the copy readable by its owner only, through a new
// file renamed over the old one (never a partial copy, never a wider
// mode). An empty copy (a scheduler that sends none) changes nothing.
func writeCopy(path, doc string) error {
	if doc == "" {
		return nil
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return ownerfile.Write(path, doc)
}

// keepCopy writes the copy of a server's answer, logging (without any
// secret) what happened.
func keepCopy(spec taskspec.Spec, sandbox string, sec taskspec.Secrets, log *zap.Logger) {
	if spec.Role != taskspec.RoleServer || sec.SecretsCopy == "" {
		return
	}
	p, err := copyPath(spec, sandbox)
	if err == nil {
		err = writeCopy(p, sec.SecretsCopy)
	}
	if err != nil {
		log.Warn("the copy of the scheduler's secrets could not be written on the volume: a scheduler that loses its state cannot recover them from this server", zap.Error(err))
		return
	}
	log.Info("copy of the scheduler's secrets kept on the volume (mode 0600)", zap.String("file", p))
}

// presentCopy posts the volume's copy to the scheduler at schedulerURL
// with the task's credential. The copy and the token never reach a log.
func presentCopy(ctx context.Context, client *http.Client, spec taskspec.Spec, sandbox, schedulerURL, taskID string, log *zap.Logger) error {
	if spec.Secrets == nil {
		return errors.New("this task has no scheduler credential")
	}
	p, err := copyPath(spec, sandbox)
	if err != nil {
		return err
	}
	doc, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("no secrets copy on this volume: %w", err)
	}
	u := strings.TrimRight(schedulerURL, "/") + taskspec.SecretsCopyPath + "?task_id=" + url.QueryEscape(taskID)
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, u, bytes.NewReader(doc))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+spec.Secrets.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return channelError(err, spec.Secrets.Token)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	log.Info("the secrets copy on this volume was presented to the scheduler", zap.String("scheduler", schedulerURL),
		zap.String("answer", strings.TrimSpace(string(b))))
	return nil
}

// copyAsked answers the scheduler's MESSAGE in the background: present
// the copy, or (Refresh) fetch the task's secrets again and rewrite it.
func (r *taskRunner) copyAsked(m taskspec.SecretsCopyRequest, client *http.Client) {
	if r.spec.Role != taskspec.RoleServer || r.spec.Secrets == nil {
		r.log.Warn("secrets copy MESSAGE ignored: this task is not a server with a scheduler credential")
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(r.ctx, time.Minute)
		defer cancel()
		if m.Refresh {
			ref := taskspec.SecretsRef{URL: m.SchedulerURL, Token: r.spec.Secrets.Token}
			sec, err := fetchSecrets(ctx, client, ref, r.id.Value, r.log, nil)
			if err != nil {
				r.log.Warn("the secrets copy could not be refreshed", zap.String("scheduler", m.SchedulerURL), zap.Error(err))
				return
			}
			keepCopy(r.spec, r.env.Sandbox, sec, r.log)
			return
		}
		if err := presentCopy(ctx, client, r.spec, r.env.Sandbox, m.SchedulerURL, r.id.Value, r.log); err != nil {
			r.log.Warn("the secrets copy could not be presented to the scheduler (it asks again)", zap.String("scheduler", m.SchedulerURL), zap.Error(err))
		}
	}()
}
