package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/adopt"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/offers"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
	"github.com/dcos-consul/dcos-consul/scheduler/store"
)

// adoptPrevious runs before the state is loaded. With no framework ID
// stored (a first start, or the state was lost), it looks in the master's
// state for this service's previous framework (adopt.Decide) and, if there
// is one, stores its live tasks as records (existing records are kept)
// and then its ID: the scheduler re-subscribes as it, as after any
// failover, instead of registering a second framework that could neither
// see nor kill the running servers. A master state that cannot be read is
// logged and a new framework registers, as before: reservations are still
// adopted from offers (offers.DecideOrphan).
//
// It returns the agents whose reservations of the service's role no
// server record explains (adopt.ReservedAgents): new servers are not
// placed elsewhere while those may still be adopted (adoptBlocked).
func adoptPrevious(ctx context.Context, cfg config.Config, st Store, log *zap.Logger, read func(context.Context) ([]byte, error), now time.Time) (map[string]string, error) {
	if cfg.Uninstall {
		return nil, nil
	}
	if _, err := st.Get(ctx, keyFrameworkID); err == nil {
		return nil, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("read the framework ID: %w", err)
	}
	if read == nil {
		read = func(ctx context.Context) ([]byte, error) { return readMasterState(ctx, cfg.MesosMaster, log) }
	}
	var b []byte
	var err error
	for attempt := 1; ; attempt++ {
		var answered *masterAnswer
		if b, err = read(ctx); err == nil || ctx.Err() != nil || errors.As(err, &answered) || attempt == 3 {
			break // only an unreachable master is asked again
		}
		log.Warn("cannot read the master's state to look for a previous framework of this service", zap.Int("attempt", attempt), zap.Error(err))
		select {
		case <-time.After(time.Duration(attempt) * time.Second):
		case <-ctx.Done():
		}
	}
	var ms adopt.MasterState
	if err == nil {
		if jerr := json.Unmarshal(b, &ms); jerr != nil {
			err = fmt.Errorf("the master's state is not JSON: %w", jerr)
		}
	}
	if err != nil {
		log.Warn("no framework ID stored and the master's state is unreadable: registering a new framework (tasks of a previous one stay invisible to it)", zap.Error(err))
		return nil, nil
	}
	p, err := load(ctx, st)
	if err != nil {
		return nil, err
	}
	r := adopt.Decide(ms, state.TargetFrom(cfg), now)
	if r.FrameworkID == "" {
		wait := adopt.ReservedAgents(ms, cfg.Role, p.Tasks)
		log.Info("no previous framework to adopt", zap.String("why", r.Why), zap.Int("agents_with_unexplained_reservations", len(wait)))
		return wait, nil
	}
	var names []string
	for n, t := range r.Tasks {
		if _, ok := p.Tasks[n]; ok {
			continue // a record written before wins
		}
		p.Tasks[n] = t
		names = append(names, n)
	}
	sort.Strings(names)
	// Records first, the framework ID last: a crash in between adopts
	// again at the next start.
	if err := saveTasks(ctx, st, p.Tasks, names, nil); err != nil {
		return nil, fmt.Errorf("write the adopted records: %w", err)
	}
	if err := st.Put(ctx, keyFrameworkID, []byte(r.FrameworkID)); err != nil {
		return nil, fmt.Errorf("write the adopted framework ID: %w", err)
	}
	wait := adopt.ReservedAgents(ms, cfg.Role, p.Tasks)
	log.Warn("the scheduler's state was lost: adopted this service's previous framework and its live tasks",
		zap.String("framework_id", r.FrameworkID), zap.Strings("tasks", names), zap.String("why", r.Why),
		zap.Int("agents_with_unexplained_reservations", len(wait)))
	return wait, nil
}

// adoptWindow bounds how long new servers wait for reservations found in
// the master's state at start to be offered (and adopted).
const adoptWindow = 2 * time.Minute

// adoptBlocked holds back the placement of server slots on fresh
// resources while agents holding unexplained reservations of the role
// have not had them adopted (for at most adoptWindow from the start): a
// server placed anew would make its own volume a replacement leftover.
func (s *Scheduler) adoptBlocked() map[string]string {
	if len(s.adoptWait) == 0 {
		return nil
	}
	if !s.opts.Now().Before(s.adoptUntil) {
		s.log.Warn("stopped waiting for unexplained reservations to be offered: servers without a record are placed anew",
			zap.Strings("agents", sortedValues(s.adoptWait)))
		s.adoptWait = nil
		return nil
	}
	for _, t := range s.tasks {
		if t.Role == taskspec.RoleServer && t.Reservation != nil && t.AgentID != "" {
			delete(s.adoptWait, t.AgentID)
		}
	}
	if len(s.adoptWait) == 0 {
		s.log.Info("every unexplained reservation found at start is explained now")
		return nil
	}
	why := fmt.Sprintf("waiting until %s for offers from %s, whose reservations of role %s no record explains (a server's volume after lost scheduler state is adopted, not placed anew)",
		s.adoptUntil.UTC().Format(time.RFC3339), strings.Join(sortedValues(s.adoptWait), ", "), s.target.Role)
	out := map[string]string{}
	for i := 0; i < s.target.Servers; i++ {
		if t, ok := s.tasks[state.ServerName(i)]; ok && t.AgentID == "" {
			out[t.Name] = offers.AdoptionHold(why)
		}
	}
	return out
}

func sortedValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// readMasterState GETs /master/state from the leading master.
func readMasterState(ctx context.Context, master string, log *zap.Logger) ([]byte, error) {
	base := strings.TrimRight(master, "/")
	if strings.HasPrefix(master, "zk://") {
		leader, err := detectLeader(ctx, master, log)
		if err != nil {
			return nil, err
		}
		base = "http://" + leader
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, base+"/master/state", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 512<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s/master/state: %w", base, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &masterAnswer{fmt.Sprintf("GET %s/master/state: %s", base, resp.Status)}
	}
	return b, nil
}

// masterAnswer: the master answered, but not with its state (asking
// again would not help).
type masterAnswer struct{ msg string }

func (m *masterAnswer) Error() string { return m.msg }
