package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/scheduler/api"
	"github.com/dcos-consul/dcos-consul/scheduler/backup"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// Copies of the snapshots on the servers' persistent volumes. The
// scheduler takes each snapshot from the leader and keeps the newest in a
// staging directory; every server's executor reports what its volume
// holds (POST backup.ExecutorPath, authenticated with its task
// credential), is offered the newest, downloads it (GET
// backup.ExecutorPath/<name>), writes it atomically with its checksum and
// keeps backup.keep of them. A restore of a snapshot that only a volume
// holds asks that server's executor to upload it (PUT), checks it against
// the checksum the executor reported, then restores it.

// volumeReport is what one server's executor last reported.
type volumeReport struct {
	have []backup.Entry
	at   time.Time
}

// volumeUploadWait bounds how long a restore waits for an executor to
// upload a volume copy (executors report every executorSnapshotEvery).
const volumeUploadWait = 3 * time.Minute

// stagingTarget is the scheduler's own directory for the newest snapshot:
// beside the file store (dev), else in the sandbox's temporary directory.
func stagingTarget(cfg config.Config) (backup.Target, error) {
	dir := filepath.Join(os.TempDir(), "dcos-consul-"+cfg.ServiceName+"-snapshots")
	if cfg.ZK == "" && cfg.StateDir != "" {
		dir = filepath.Join(cfg.StateDir, "snapshot-staging")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	return backup.Open("file://" + abs)
}

// store writes a snapshot into staging, then into the target (if any),
// and offers it to the executors.
func (s *snapshots) store(ctx context.Context, name string, r io.Reader) (backup.Entry, error) {
	e, err := s.staging.Put(ctx, name, r)
	if err != nil {
		return backup.Entry{}, fmt.Errorf("stage snapshot %s: %w", name, err)
	}
	if s.target != nil {
		rd, err := s.staging.Open(ctx, name)
		if err != nil {
			return backup.Entry{}, err
		}
		te, err := s.target.Put(ctx, name, rd)
		rd.Close()
		if err != nil {
			return backup.Entry{}, err
		}
		if te.SHA256 != e.SHA256 {
			return backup.Entry{}, fmt.Errorf("snapshot %s: %s stored SHA-256 %s, the snapshot's is %s", name, s.target, te.SHA256, e.SHA256)
		}
		e = te
	}
	s.mu.Lock()
	latest := e
	s.latest = &latest
	s.mu.Unlock()
	if gone, err := backup.KeepNewest(ctx, s.staging, 1); err != nil {
		s.log.Warn("cannot prune the staging directory", zap.Error(err))
	} else if len(gone) > 0 {
		s.log.Debug("staged snapshots dropped", zap.Strings("names", gone))
	}
	return e, nil
}

// where names the places a snapshot goes.
func (s *snapshots) where() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.whereLocked()
}

func (s *snapshots) whereLocked() string {
	if s.target == nil {
		return "the servers' volumes"
	}
	return s.target.String() + " and the servers' volumes"
}

// copiesLocked says which servers' volumes hold e.
func (s *snapshots) copiesLocked(e backup.Entry) string {
	var on []string
	for srv, r := range s.volumes {
		for _, h := range r.have {
			if h.Name == e.Name && h.SHA256 == e.SHA256 {
				on = append(on, srv)
			}
		}
	}
	if len(on) == 0 {
		return "on no server's volume yet"
	}
	sortStrings(on)
	return "on the volumes of " + strings.Join(on, ", ")
}

func sortStrings(s []string) {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
}

// volumeCopies is what the servers of the current view reported.
func (s *snapshots) volumeCopies() map[string][]backup.Entry {
	live := map[string]bool{}
	for _, t := range s.view().Tasks {
		if t.Role == "server" && t.Active() {
			live[t.Name] = true
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]backup.Entry{}
	for srv, r := range s.volumes {
		if live[srv] {
			out[srv] = append([]backup.Entry(nil), r.have...)
		}
	}
	return out
}

// restoreSource is where a restore reads name from: the target, staging,
// or a server's volume (uploaded on request into staging first).
func (s *snapshots) restoreSource(ctx context.Context, name string) (backup.Target, error) {
	for _, t := range []backup.Target{s.target, s.staging} {
		if t == nil {
			continue
		}
		es, err := t.List(ctx)
		if err != nil {
			continue
		}
		for _, e := range es {
			if e.Name == name {
				return t, nil
			}
		}
	}
	want, holder := s.volumeEntry(name)
	if holder == "" {
		return nil, fmt.Errorf("%w: snapshot %q is in no backup target and on no server's volume (GET /v1/snapshots lists them)", api.ErrBadRequest, name)
	}
	s.mu.Lock()
	s.upload = name
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.upload = ""
		s.mu.Unlock()
	}()
	s.setRunning(fmt.Sprintf("restoring snapshot %s: waiting for %s's executor to upload its volume copy", name, holder))
	wctx, cancel := context.WithTimeout(ctx, volumeUploadWait)
	defer cancel()
	for {
		if es, err := s.staging.List(wctx); err == nil {
			for _, e := range es {
				if e.Name == name && e.SHA256 == want.SHA256 {
					s.log.Info("volume copy uploaded for a restore", zap.String("name", name), zap.String("from", holder))
					return s.staging, nil
				}
			}
		}
		select {
		case <-wctx.Done():
			return nil, fmt.Errorf("%w: snapshot %s: %s's executor did not upload its volume copy within %s", api.ErrUnavailable, name, holder, volumeUploadWait)
		case <-time.After(time.Second):
		}
	}
}

// volumeEntry is a live server's volume copy of name.
func (s *snapshots) volumeEntry(name string) (backup.Entry, string) {
	copies := s.volumeCopies()
	srvs := make([]string, 0, len(copies))
	for srv := range copies {
		srvs = append(srvs, srv)
	}
	sortStrings(srvs)
	for _, srv := range srvs {
		for _, e := range copies[srv] {
			if e.Name == name {
				return e, srv
			}
		}
	}
	return backup.Entry{}, ""
}

// executorHandler serves backup.ExecutorPath for the servers' executors.
// verify checks a task's credential; live says whether the task is the
// live incarnation of a server, and which.
func (s *snapshots) executorHandler(verify func(taskID, token string) bool, live func(taskID string) (string, bool)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		id := r.URL.Query().Get("task_id")
		tok := bearerToken(r)
		if id == "" || tok == "" {
			jsonError(w, http.StatusUnauthorized, "an executor presents ?task_id= and its task credential as Authorization: Bearer")
			return
		}
		if !verify(id, tok) {
			jsonError(w, http.StatusForbidden, "the credential does not belong to that task")
			return
		}
		server, ok := live(id)
		if !ok {
			jsonError(w, http.StatusForbidden, "not a live server task of this scheduler")
			return
		}
		name := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, backup.ExecutorPath), "/")
		switch {
		case name == "" && r.Method == http.MethodPost:
			s.report(w, r, server)
		case name != "" && r.Method == http.MethodGet:
			s.serveStaged(w, r, name)
		case name != "" && r.Method == http.MethodPut:
			s.receiveUpload(w, r, server, name)
		default:
			jsonError(w, http.StatusMethodNotAllowed, "POST "+backup.ExecutorPath+" (report), GET or PUT "+backup.ExecutorPath+"/<name>")
		}
	}
}

func (s *snapshots) report(w http.ResponseWriter, r *http.Request, server string) {
	var rep backup.Report
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&rep); err != nil {
		jsonError(w, http.StatusBadRequest, "the body must be {\"have\": [entries]}: "+err.Error())
		return
	}
	s.mu.Lock()
	s.volumes[server] = volumeReport{have: rep.Have, at: s.now()}
	off := backup.Offer{Keep: s.keep}
	if s.latest != nil {
		l := *s.latest
		l.Locations = nil
		off.Latest = &l
	}
	for _, e := range rep.Have {
		if s.upload != "" && e.Name == s.upload {
			off.Upload = s.upload
		}
	}
	s.mu.Unlock()
	writeJSONBody(w, http.StatusOK, off)
}

func (s *snapshots) serveStaged(w http.ResponseWriter, r *http.Request, name string) {
	if !backup.ValidName(name) {
		jsonError(w, http.StatusBadRequest, "not a snapshot name")
		return
	}
	rd, err := s.staging.Open(r.Context(), name)
	if err != nil {
		jsonError(w, http.StatusNotFound, "snapshot "+name+" is not staged (only the newest is)")
		return
	}
	defer rd.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	if _, err := io.Copy(w, rd); err != nil {
		s.log.Warn("serving a snapshot to an executor failed", zap.String("name", name), zap.Error(err))
	}
}

func (s *snapshots) receiveUpload(w http.ResponseWriter, r *http.Request, server, name string) {
	s.mu.Lock()
	wanted := s.upload == name
	var want backup.Entry
	for _, e := range s.volumes[server].have {
		if e.Name == name {
			want = e
		}
	}
	s.mu.Unlock()
	if !wanted || want.Name == "" {
		jsonError(w, http.StatusConflict, "no restore waits for "+name+" from "+server)
		return
	}
	e, err := s.staging.Put(r.Context(), name, r.Body)
	if err != nil {
		jsonError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if e.SHA256 != want.SHA256 {
		_ = s.staging.Delete(r.Context(), name)
		jsonError(w, http.StatusBadRequest, fmt.Sprintf("the upload's SHA-256 is %s, %s reported %s", e.SHA256, server, want.SHA256))
		return
	}
	writeJSONBody(w, http.StatusOK, e)
}

func bearerToken(r *http.Request) string {
	a := strings.TrimSpace(r.Header.Get("Authorization"))
	if len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return ""
}

func writeJSONBody(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func jsonError(w http.ResponseWriter, code int, msg string) {
	writeJSONBody(w, code, map[string]any{"code": code, "error": http.StatusText(code), "message": msg})
}

// liveServer: taskID is the live incarnation of a server (its name).
func (s *Scheduler) liveServer(taskID string) (string, bool) {
	name := state.NameOfTaskID(taskID)
	for _, t := range s.Snapshot().Tasks {
		if t.Name == name {
			return name, t.TaskID == taskID && t.Active() && t.Role == "server"
		}
	}
	return "", false
}

// snapshotExecutorHandler is backup.ExecutorPath on the API.
func (s *Scheduler) snapshotExecutorHandler() http.Handler {
	if s.snap == nil {
		return http.NotFoundHandler()
	}
	return s.snap.executorHandler(func(id, tok string) bool { return s.secrets.Get().VerifyCredential(id, tok) }, s.liveServer)
}
