package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"
)

// leaderTransport sends every request to the current leading master and
// follows 307 redirects itself. mesos-go v0.0.11 follows a redirect only
// for the SUBSCRIBE that got it: later calls would still go to the old
// endpoint, get 307 again and drop the subscription. Rewriting the host of
// every request here keeps all calls on the leader.
type leaderTransport struct {
	base http.RoundTripper
	log  *zap.Logger
	// auth gives the Authorization header of every request (framework
	// authentication), nil for none.
	auth mesosAuth

	mu     sync.Mutex
	leader string // host:port
}

func (t *leaderTransport) setLeader(hostport string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if hostport != "" && hostport != t.leader {
		t.log.Info("leading master", zap.String("master", hostport), zap.String("previous", t.leader))
	}
	t.leader = hostport
}

func (t *leaderTransport) current() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.leader
}

func (t *leaderTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	for hop := 0; ; hop++ {
		r := req.Clone(req.Context())
		if l := t.current(); l != "" {
			r.URL.Host = l
			r.Host = l
		}
		if t.auth != nil {
			h, err := t.auth.Header(r.Context())
			if err != nil {
				return nil, err
			}
			r.Header.Set("Authorization", h)
		}
		if hop > 0 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r.Body = body
		}
		resp, err := t.base.RoundTrip(r)
		if err != nil || resp.StatusCode != http.StatusTemporaryRedirect || hop >= 3 || req.GetBody == nil {
			return resp, err
		}
		loc, perr := url.Parse(resp.Header.Get("Location"))
		if perr != nil || loc.Host == "" {
			return resp, nil // let mesos-go report the bad Location
		}
		resp.Body.Close()
		t.log.Info("master redirected to the leader", zap.String("from", r.URL.Host), zap.String("to", loc.Host))
		t.setLeader(loc.Host)
	}
}

// masterInfo is the JSON a Mesos master writes to ZooKeeper (json.info_*).
type masterInfo struct {
	Hostname string `json:"hostname"`
	Port     int    `json:"port"`
	Address  struct {
		Hostname string `json:"hostname"`
		IP       string `json:"ip"`
		Port     int    `json:"port"`
	} `json:"address"`
}

// detectLeader returns the leading master's host:port from a zk:// URL:
// the json.info_ child with the lowest sequence number.
func detectLeader(ctx context.Context, zkURL string, log *zap.Logger) (string, error) {
	u, err := url.Parse(zkURL)
	if err != nil {
		return "", fmt.Errorf("master %q: %w", zkURL, err)
	}
	servers := strings.Split(u.Host, ",")
	path := strings.TrimRight(u.Path, "/")
	if path == "" {
		path = "/mesos"
	}
	conn, events, err := zk.Connect(servers, 10*time.Second, zk.WithLogger(zkQuiet{}))
	if err != nil {
		return "", fmt.Errorf("connect to ZooKeeper %s: %w", u.Host, err)
	}
	defer conn.Close()
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	for connected := false; !connected; {
		select {
		case ev := <-events:
			if ev.State == zk.StateHasSession {
				connected = true
			}
		case <-deadline.C:
			return "", fmt.Errorf("ZooKeeper %s: no session within 15s", u.Host)
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	children, _, err := conn.Children(path)
	if err != nil {
		return "", fmt.Errorf("list %s in ZooKeeper: %w", path, err)
	}
	var infos []string
	for _, c := range children {
		if strings.HasPrefix(c, "json.info_") {
			infos = append(infos, c)
		}
	}
	if len(infos) == 0 {
		return "", fmt.Errorf("no Mesos master has registered under %s in ZooKeeper (children: %v)", path, children)
	}
	sort.Slice(infos, func(i, j int) bool { return seq(infos[i]) < seq(infos[j]) })
	data, _, err := conn.Get(path + "/" + infos[0])
	if err != nil {
		return "", fmt.Errorf("read %s/%s: %w", path, infos[0], err)
	}
	var mi masterInfo
	if err := json.Unmarshal(data, &mi); err != nil {
		return "", fmt.Errorf("%s/%s is not a master info document: %w", path, infos[0], err)
	}
	host := mi.Address.IP
	if host == "" {
		host = mi.Address.Hostname
	}
	if host == "" {
		host = mi.Hostname
	}
	port := mi.Address.Port
	if port == 0 {
		port = mi.Port
	}
	if host == "" || port == 0 {
		return "", fmt.Errorf("%s/%s has no address", path, infos[0])
	}
	leader := net.JoinHostPort(host, strconv.Itoa(port))
	log.Debug("leading master found in ZooKeeper", zap.String("leader", leader), zap.String("node", infos[0]))
	return leader, nil
}

func seq(name string) int64 {
	i := strings.LastIndex(name, "_")
	n, _ := strconv.ParseInt(name[i+1:], 10, 64)
	return n
}

type zkQuiet struct{}

func (zkQuiet) Printf(string, ...any) {}
