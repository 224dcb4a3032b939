package executor

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/mesos/mesos-go/api/v1/lib/executor/config"
)

// Config is everything the executor takes from its environment, plus its
// own timing. FromEnv fills it the way a Mesos agent's environment says.
type Config struct {
	FrameworkID string
	ExecutorID  string
	// Sandbox is MESOS_SANDBOX: the task spec's data_dir is relative to it.
	Sandbox string
	// AgentEndpoint is the agent's ip:port (MESOS_AGENT_ENDPOINT).
	AgentEndpoint string
	// BindIP is the address the Consul agent binds and advertises:
	// LIBPROCESS_IP when set, else the host of AgentEndpoint.
	BindIP string

	// Checkpoint: the framework checkpoints, so the executor survives an
	// agent restart by re-subscribing (MESOS_CHECKPOINT).
	Checkpoint bool
	// RecoveryTimeout bounds how long the executor tries to re-subscribe
	// after it lost the agent (MESOS_RECOVERY_TIMEOUT).
	RecoveryTimeout time.Duration
	// SubscriptionBackoffMax caps the wait between two SUBSCRIBE attempts
	// (MESOS_SUBSCRIPTION_BACKOFF_MAX).
	SubscriptionBackoffMax time.Duration
	// ShutdownGracePeriod is how long the agent waits after SHUTDOWN before
	// it destroys the executor (MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD).
	ShutdownGracePeriod time.Duration

	// HeartbeatInterval: the executor sends a HEARTBEAT call this often and
	// takes two failures in a row as a lost connection. The agent's own
	// HEARTBEAT events come only every 30 minutes.
	HeartbeatInterval time.Duration
	// EventTimeout: no event at all for this long is a lost connection.
	EventTimeout time.Duration
	// InitialSubscribeTimeout bounds the first subscription, checkpointing
	// or not (the agent's executor_registration_timeout is 1 minute).
	InitialSubscribeTimeout time.Duration
	// KillGracePeriod bounds the graceful leave on a KILL without a kill
	// policy.
	KillGracePeriod time.Duration
	// AckWait bounds how long the executor waits for the agent to
	// acknowledge its last updates before it exits.
	AckWait time.Duration
	// CallTimeout bounds each non-streaming call (UPDATE, HEARTBEAT, ...).
	CallTimeout time.Duration
	// AgentStopWait bounds the wait for the Consul agent's shutdown after
	// a leave or a stop; past it the task is reported ended anyway and
	// the executor exits, which ends the in-process agent.
	AgentStopWait time.Duration
	// DrainWait is how long a server stopped in place refuses client
	// requests (retried by Consul's clients on another server) before
	// it stops; at most half the kill's grace.
	DrainWait time.Duration

	// AuthToken is MESOS_EXECUTOR_AUTHENTICATION_TOKEN, set by an agent
	// with executor authentication (--authenticate_http_executors): sent
	// as "Authorization: Bearer <token>" on every call. Never logged.
	AuthToken string
}

// EnvAuthToken is the variable an agent passes the executor's token in.
const EnvAuthToken = "MESOS_EXECUTOR_AUTHENTICATION_TOKEN"

// Defaults for the executor's own timing.
const (
	DefaultHeartbeatInterval       = 10 * time.Second
	DefaultEventTimeout            = 65 * time.Minute // two agent heartbeats and a margin
	DefaultInitialSubscribeTimeout = time.Minute
	DefaultKillGracePeriod         = 30 * time.Second
	DefaultAckWait                 = 10 * time.Second
	DefaultCallTimeout             = 10 * time.Second
	// DefaultAgentStopWait: Consul's shutdown takes well under a second;
	// hashicorp/raft v1.5.0's Shutdown was seen waiting forever on a
	// replication goroutine of a former leader (stuck in
	// netPipeline.AppendEntries) after a leadership transfer.
	DefaultAgentStopWait = 15 * time.Second
	// DefaultDrainWait: a client moves off a draining server at its next
	// request, and a forward in flight takes milliseconds; 1 s sufficed
	// for 8 busy writers in consulagent's TestDrainBeforeStop.
	DefaultDrainWait  = 2 * time.Second
	defaultBackoffMax = 2 * time.Second
)

// FromEnv reads the environment a Mesos agent gives a custom executor
// (mesos-go's config.FromEnv: durations in stout syntax such as "5secs"),
// and works out the bind address.
func FromEnv() (Config, error) {
	mc, err := config.FromEnv()
	if err != nil {
		return Config{}, fmt.Errorf("executor environment: %w", err)
	}
	bind, err := bindIP(os.Getenv("LIBPROCESS_IP"), mc.AgentEndpoint)
	if err != nil {
		return Config{}, err
	}
	c := Config{
		FrameworkID:            mc.FrameworkID,
		ExecutorID:             mc.ExecutorID,
		Sandbox:                mc.Sandbox,
		AgentEndpoint:          mc.AgentEndpoint,
		BindIP:                 bind,
		Checkpoint:             mc.Checkpoint,
		RecoveryTimeout:        mc.RecoveryTimeout,
		SubscriptionBackoffMax: mc.SubscriptionBackoffMax,
		ShutdownGracePeriod:    mc.ExecutorShutdownGracePeriod,
		AuthToken:              os.Getenv(EnvAuthToken),
	}
	// Kept in memory only: nothing the executor starts inherits it.
	_ = os.Unsetenv(EnvAuthToken)
	return c.withDefaults(), nil
}

func (c Config) withDefaults() Config {
	set := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	set(&c.HeartbeatInterval, DefaultHeartbeatInterval)
	set(&c.EventTimeout, DefaultEventTimeout)
	set(&c.InitialSubscribeTimeout, DefaultInitialSubscribeTimeout)
	set(&c.KillGracePeriod, DefaultKillGracePeriod)
	set(&c.AckWait, DefaultAckWait)
	set(&c.CallTimeout, DefaultCallTimeout)
	set(&c.AgentStopWait, DefaultAgentStopWait)
	set(&c.DrainWait, DefaultDrainWait)
	set(&c.SubscriptionBackoffMax, defaultBackoffMax)
	set(&c.ShutdownGracePeriod, 5*time.Second)
	return c
}

// bindIP is LIBPROCESS_IP when set (the agent copies its own), else the
// host of the agent endpoint, resolved if it is a name.
func bindIP(libprocessIP, agentEndpoint string) (string, error) {
	if ip := net.ParseIP(libprocessIP); ip != nil && !ip.IsUnspecified() {
		return ip.String(), nil
	}
	host, _, err := net.SplitHostPort(agentEndpoint)
	if err != nil {
		return "", fmt.Errorf("MESOS_AGENT_ENDPOINT %q is not ip:port: %w", agentEndpoint, err)
	}
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsUnspecified() {
			return "", fmt.Errorf("MESOS_AGENT_ENDPOINT %q has no usable address to bind Consul to; set LIBPROCESS_IP", agentEndpoint)
		}
		return ip.String(), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupIP(ctx, "ip4", host)
	if err != nil || len(ips) == 0 {
		return "", fmt.Errorf("MESOS_AGENT_ENDPOINT host %q does not resolve to an IPv4 address: %v", host, err)
	}
	return ips[0].String(), nil
}
