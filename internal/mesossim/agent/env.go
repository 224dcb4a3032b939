package agent

import (
	"sort"
	"strconv"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// defaultPath is the PATH a Mesos agent gives executors when nothing else
// sets one (04-executor-env.txt).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// executorEnv builds exactly the environment a Mesos agent gives a custom
// command executor (mesos-api.md 5.2, 04-executor-env.txt): nothing is
// inherited from the simulator's own environment. MESOS_NATIVE_*LIBRARY
// are absent because no libmesos exists here (Mesos sets them only when the
// file exists). CommandInfo.environment is applied last and wins.
// Caller holds mu.
func (a *Agent) executorEnv(e *executor, fw mesos.FrameworkInfo) []string {
	env := map[string]string{
		"MESOS_FRAMEWORK_ID":                   e.fwID.Value,
		"MESOS_EXECUTOR_ID":                    e.info.ExecutorID.Value,
		"MESOS_DIRECTORY":                      e.dir,
		"MESOS_SANDBOX":                        e.dir,
		"MESOS_AGENT_ENDPOINT":                 a.Endpoint(),
		"MESOS_SLAVE_ID":                       a.cfg.ID.Value,
		"MESOS_SLAVE_PID":                      a.PID(),
		"MESOS_CHECKPOINT":                     "0",
		"MESOS_HTTP_COMMAND_EXECUTOR":          "0",
		"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": stoutDuration(e.graceperiod(a.cfg.ExecutorShutdownGrace)),
		"LIBPROCESS_PORT":                      "0",
		"LIBPROCESS_IP":                        a.cfg.IP,
		"PATH":                                 defaultPath,
	}
	if a.cfg.ExecutorAuthentication {
		env["MESOS_EXECUTOR_AUTHENTICATION_TOKEN"] = e.authToken
	}
	if fw.GetCheckpoint() {
		env["MESOS_CHECKPOINT"] = "1"
		env["MESOS_RECOVERY_TIMEOUT"] = stoutDuration(a.cfg.RecoveryTimeout)
		env["MESOS_SUBSCRIPTION_BACKOFF_MAX"] = stoutDuration(a.cfg.SubscriptionBackoffMax)
	}
	if ce := e.info.Command.GetEnvironment(); ce != nil {
		for _, v := range ce.Variables {
			if v.Type != nil && *v.Type != mesos.Environment_Variable_VALUE {
				continue // secrets are not supported by the simulator
			}
			env[v.Name] = v.GetValue()
		}
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// stoutDuration renders a duration the way stout's operator<< does: in the
// largest unit (weeks … ns) in which it is a whole number, e.g. 5secs,
// 15mins, 1500ms. mesos-go's executor config parses exactly this syntax.
func stoutDuration(d time.Duration) string {
	neg := d < 0
	if neg {
		d = -d
	}
	units := []struct {
		name string
		size time.Duration
	}{
		{"weeks", 7 * 24 * time.Hour},
		{"days", 24 * time.Hour},
		{"hrs", time.Hour},
		{"mins", time.Minute},
		{"secs", time.Second},
		{"ms", time.Millisecond},
		{"us", time.Microsecond},
		{"ns", time.Nanosecond},
	}
	s := "0ns"
	for _, u := range units {
		if d >= u.size && d%u.size == 0 {
			s = strconv.FormatInt(int64(d/u.size), 10) + u.name
			break
		}
	}
	if neg {
		s = "-" + s
	}
	return s
}
