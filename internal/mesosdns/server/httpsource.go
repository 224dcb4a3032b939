package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dcos-consul/dcos-consul/internal/mesosdns"
)

// maxStateBytes bounds a state document (a 10,000-agent master state is a
// few tens of MB).
const maxStateBytes = 512 << 20

// HTTPSource returns a Source that GETs <master>/master/state as Mesos-DNS
// does (records/state/client/cli.go): it tries the masters in order and, when
// the answering master names another leader, fetches again from the leader.
// A master is "host:port" or a URL ("http://host:port"); nil client means a
// client with a 30 s timeout.
func HTTPSource(client *http.Client, masters ...string) Source {
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	return func(ctx context.Context) ([]byte, error) {
		if len(masters) == 0 {
			return nil, errors.New("no Mesos master configured")
		}
		var errs []error
		for _, m := range masters {
			base, err := masterURL(m)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			body, err := fetchFollowingLeader(ctx, client, base)
			if err == nil {
				return body, nil
			}
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
		return nil, errors.Join(errs...)
	}
}

func masterURL(m string) (*url.URL, error) {
	if !strings.Contains(m, "://") {
		m = "http://" + m
	}
	u, err := url.Parse(m)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("master %q: not host:port or a URL", m)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

func fetchFollowingLeader(ctx context.Context, client *http.Client, base *url.URL) ([]byte, error) {
	body, err := fetchState(ctx, client, base)
	if err != nil {
		return nil, err
	}
	var probe struct {
		Leader string `json:"leader"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		return nil, fmt.Errorf("%s/master/state: %w", base, err)
	}
	if probe.Leader == "" {
		return nil, fmt.Errorf("%s/master/state: %w", base, mesosdns.ErrNoLeader)
	}
	leader, err := mesosdns.ParseUPID(probe.Leader)
	if err != nil {
		return nil, fmt.Errorf("%s/master/state: leader: %w", base, err)
	}
	leaderHostPort := net.JoinHostPort(leader.Host, leader.Port)
	if leaderHostPort == base.Host || sameHostPort(leaderHostPort, base.Host) {
		return body, nil
	}
	lu := *base
	lu.Host = leaderHostPort
	return fetchState(ctx, client, &lu)
}

func sameHostPort(a, b string) bool {
	ah, ap, err1 := net.SplitHostPort(a)
	bh, bp, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || ap != bp {
		return false
	}
	ai, bi := net.ParseIP(ah), net.ParseIP(bh)
	return ai != nil && bi != nil && ai.Equal(bi)
}

func fetchState(ctx context.Context, client *http.Client, base *url.URL) ([]byte, error) {
	u := base.String() + "/master/state"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "dcos-consul-mesos-dns")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxStateBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %.200s", u, resp.Status, body)
	}
	if len(body) > maxStateBytes {
		return nil, fmt.Errorf("GET %s: state larger than %d bytes", u, maxStateBytes)
	}
	return body, nil
}

// StaticSource serves a fixed document (tests, and tools that already hold
// the state).
func StaticSource(doc []byte) Source {
	return func(context.Context) ([]byte, error) { return doc, nil }
}
