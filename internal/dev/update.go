package dev

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	dcosconsul "github.com/dcos-consul/dcos-consul"
	"github.com/dcos-consul/dcos-consul/internal/cosmos"
	"github.com/dcos-consul/dcos-consul/internal/universe"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
)

// optionsFile keeps the options of the last update in the work dir, so
// that dev resumes with them.
const optionsFile = "options.json"

// updater is dev's stand-in for Cosmos's service update: the current
// package options (dev's base options until the first update).
type updater struct {
	mu      sync.Mutex
	options map[string]any
	count   int
}

// baseOptions are the package options dev's own scheduler settings
// (SchedulerEnv) amount to.
func (c *Cluster) baseOptions() map[string]any {
	v, _ := cosmos.DecodeJSON(strings.NewReader(fmt.Sprintf(`{
		"service": {"name": "consul"},
		"servers": {"count": %d, "cpus": 0.2, "mem": 256, "disk": 256},
		"clients": {"cpus": 0.1, "mem": 128}}`, c.opts.Servers)))
	return v.(map[string]any)
}

func devPackage() (*cosmos.Package, error) {
	src, err := universe.ReadSourceFS(dcosconsul.PackageFiles)
	if err != nil {
		return nil, err
	}
	return src.Cosmos("http://dev.invalid/" + src.Version())
}

// envChanges renders the package for two sets of options and returns the
// option-derived environment variables that differ, as NAME=value.
func envChanges(pkg *cosmos.Package, from, to map[string]any) ([]string, error) {
	envOf := func(opts map[string]any) (map[string]string, error) {
		app, err := pkg.RenderApp(opts)
		if err != nil {
			return nil, err
		}
		out := map[string]string{}
		env, _ := app["env"].(map[string]any)
		for k, v := range env {
			out[k] = fmt.Sprint(v)
		}
		return out, nil
	}
	a, err := envOf(from)
	if err != nil {
		return nil, err
	}
	b, err := envOf(to)
	if err != nil {
		return nil, err
	}
	var changed []string
	for _, o := range config.Options {
		if o.Source == config.FromOption && a[o.Env] != b[o.Env] {
			changed = append(changed, o.Env+"="+b[o.Env])
		}
	}
	return changed, nil
}

// Update applies package options to the running cluster as Cosmos's
// /service/update does: merged over the current options (replace: over
// dev's base options), validated and rendered with the package's Marathon
// template (internal/cosmos); the scheduler then restarts with the
// rendered environment's changed variables (as Marathon restarts it), and
// rolls the change out. It returns the resolved options and what changed.
func (c *Cluster) Update(user map[string]any, replace bool) (map[string]any, []string, error) {
	c.upd.mu.Lock()
	defer c.upd.mu.Unlock()
	pkg, err := devPackage()
	if err != nil {
		return nil, nil, err
	}
	base := c.baseOptions()
	cur := c.upd.options
	if cur == nil {
		cur = base
	}
	next := cosmos.Merge(cur, user)
	if replace {
		next = cosmos.Merge(base, user)
	}
	resolved, err := pkg.Options(next)
	if err != nil {
		return nil, nil, err
	}
	changed, err := envChanges(pkg, cur, next)
	if err != nil {
		return nil, nil, err
	}
	b, err := json.MarshalIndent(next, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(filepath.Join(c.opts.WorkDir, optionsFile), b, 0o644); err != nil {
		return nil, nil, fmt.Errorf("dev: keeping the options: %w", err)
	}
	c.upd.options = next
	c.upd.count++
	if len(changed) == 0 {
		return resolved, nil, nil
	}
	c.opts.ExtraEnv = append(c.opts.ExtraEnv, changed...)
	c.opts.Logger.Info("options updated: restarting the scheduler with the new environment", zap.Strings("changed", changed))
	if err := c.RestartScheduler(); err != nil {
		return nil, nil, err
	}
	return resolved, changed, nil
}

// resumeOptions applies the options of an earlier update kept in the work
// dir (dev resumed on the same cluster) to the scheduler's environment.
func (c *Cluster) resumeOptions() error {
	b, err := os.ReadFile(filepath.Join(c.opts.WorkDir, optionsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	v, err := cosmos.DecodeJSON(bytes.NewReader(b))
	opts, ok := v.(map[string]any)
	if err != nil || !ok {
		return fmt.Errorf("dev: %s in the work dir is not a JSON object of options (%v): fix or delete it", optionsFile, err)
	}
	pkg, err := devPackage()
	if err != nil {
		return err
	}
	changed, err := envChanges(pkg, c.baseOptions(), opts)
	if err != nil {
		return fmt.Errorf("dev: the options in %s: %w", optionsFile, err)
	}
	c.upd.options = opts
	c.opts.ExtraEnv = append(c.opts.ExtraEnv, changed...)
	return nil
}

// CosmosHandler serves dev's stand-in for Cosmos's service update
// (POST /cosmos/service/update, the request and answer of Cosmos's
// version 1), for `dcos-consul consul update start`.
func (c *Cluster) CosmosHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/cosmos/service/update", func(w http.ResponseWriter, r *http.Request) {
		fail := func(code int, typ, msg string) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_ = json.NewEncoder(w).Encode(map[string]string{"type": typ, "message": msg})
		}
		if r.Method != http.MethodPost {
			fail(http.StatusMethodNotAllowed, "MethodNotAllowed", "use POST")
			return
		}
		var req struct {
			AppID   string         `json:"appId"`
			Options map[string]any `json:"options"`
			Replace bool           `json:"replace"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			fail(http.StatusBadRequest, "MalformedRequest", err.Error())
			return
		}
		if strings.TrimPrefix(req.AppID, "/") != "consul" {
			fail(http.StatusNotFound, "MarathonAppNotFound", fmt.Sprintf("dev runs the service /consul, not %q", req.AppID))
			return
		}
		resolved, changed, err := c.Update(req.Options, req.Replace)
		var oe *cosmos.OptionsError
		switch {
		case errors.As(err, &oe):
			fail(http.StatusBadRequest, "JsonSchemaMismatch", err.Error())
			return
		case err != nil:
			fail(http.StatusInternalServerError, "ServiceUpdateError", err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/vnd.dcos.service.update-response+json;charset=utf-8;version=v1")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"marathonDeploymentId": fmt.Sprintf("dev-update-%d", c.updates()),
			"package":              map[string]string{"name": "consul"},
			"resolvedOptions":      resolved,
			"changedEnvironment":   changed,
		})
	})
	return mux
}

func (c *Cluster) updates() int {
	c.upd.mu.Lock()
	defer c.upd.mu.Unlock()
	return c.upd.count
}

// ServeCosmos serves CosmosHandler on the master's address (any free
// port) until the returned function is called; it returns the base URL.
func (c *Cluster) ServeCosmos() (string, func(), error) {
	port, err := freePort(c.opts.MasterIP)
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(c.opts.MasterIP, strconv.Itoa(port)))
	if err != nil {
		return "", nil, fmt.Errorf("dev: listening for the Cosmos stand-in: %w", err)
	}
	srv := &http.Server{Handler: c.CosmosHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}
