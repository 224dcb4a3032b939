package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/dcos-consul/dcos-consul/internal/dev"
	"github.com/dcos-consul/dcos-consul/internal/devstate"
	"github.com/dcos-consul/dcos-consul/internal/logging"
	"github.com/dcos-consul/dcos-consul/scheduler/config"
)

func init() { subcommands = append(subcommands, newDevCommand) }

// devReplaceAfter is how long dev's scheduler waits for a lost server's
// agent before replacing the server elsewhere (DC/OS's default is 10m):
// short enough to watch `dev fault remove-agent` heal.
const devReplaceAfter = "30s"

func newDevCommand() *cobra.Command {
	var (
		o        dev.Options
		fresh    bool
		quiet    bool
		logLevel string
		wait     time.Duration
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a real Consul cluster on a simulated Mesos cluster on loopback",
		Long: `dev starts a simulated Mesos master and agents on 127.0.0.x, a Mesos-DNS
compatible DNS server, and the real dcos-consul scheduler, which launches the
real executor (and with it Consul) on the agents. Every listener is on a
loopback address. Ctrl-C (or "dcos-consul dev stop" from another terminal)
stops everything. Starting again with the same --work-dir resumes the same
cluster and data.

The console shows a live status and, once Consul is up, where everything is;
the logs go to <work-dir>/dev.log (the simulator, its agents and Mesos-DNS)
and <work-dir>/scheduler.log. dev writes where it is to <work-dir>/dev.json
and ~/.dcos-consul/dev.json, so "dcos-consul consul ..." and "dcos-consul dev
status|stop|fault" find it from another terminal.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if fresh {
				if err := os.RemoveAll(o.WorkDir); err != nil {
					return fmt.Errorf("removing %s: %w", o.WorkDir, err)
				}
			}
			if err := os.MkdirAll(o.WorkDir, 0o755); err != nil {
				return fmt.Errorf("creating the work dir: %w", err)
			}
			log, f, err := logging.NewFile(logLevel, filepath.Join(o.WorkDir, "dev.log"))
			if err != nil {
				return err
			}
			defer f.Close()
			defer func() { _ = log.Sync() }()
			o.Logger = log
			o.ExtraEnv = append([]string{config.EnvReplaceAft + "=" + devReplaceAfter}, o.ExtraEnv...)
			well, err := devstate.WellKnown(os.LookupEnv)
			if err != nil {
				return err
			}
			con := dev.Console{Out: cmd.OutOrStdout(), Quiet: quiet, WellKnown: well}
			if out, ok := cmd.OutOrStdout().(*os.File); ok && term.IsTerminal(int(out.Fd())) {
				con.Live = true
				if w, _, err := term.GetSize(int(out.Fd())); err == nil {
					con.Width = w
				}
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			err = dev.Run(ctx, o, con, wait)
			if err == nil && !quiet {
				fmt.Fprintln(cmd.OutOrStdout(), "Stopped. The next `dcos-consul dev` with this work dir resumes the cluster.")
			}
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Agents, "agents", 5, "simulated Mesos agents")
	f.IntVar(&o.Servers, "servers", 3, "Consul servers (1, 3, 5 or 7)")
	f.StringVar(&o.WorkDir, "work-dir", ".work/dev", "state of the simulated cluster, the scheduler and the Consul data; reused on the next start")
	f.BoolVar(&fresh, "fresh", false, "remove the work dir first: a new cluster")
	f.StringVar(&o.MasterIP, "master-ip", "127.0.0.1", "loopback address of the master, Mesos-DNS and the scheduler API; agents take the next addresses")
	f.IntVar(&o.MasterPort, "master-port", 5050, "master port")
	f.IntVar(&o.AgentPort, "agent-port", 5051, "agent port")
	f.IntVar(&o.DNSPort, "dns-port", 61053, "Mesos-DNS port on the master address")
	f.IntVar(&o.APIPort, "api-port", 0, "scheduler API port on the master address (0: any free port)")
	f.DurationVar(&o.DNSRefresh, "dns-refresh", 2*time.Second, "Mesos-DNS refresh interval (DC/OS uses 30s)")
	f.StringArrayVar(&o.ExtraEnv, "env", nil, "extra scheduler environment (NAME=value), e.g. --env CONSUL_DATACENTER=dc2")
	f.StringVar(&logLevel, "log-level", "info", "level of <work-dir>/dev.log: debug, info, warn or error")
	f.BoolVar(&quiet, "quiet", false, "no status view: print only the summary once Consul is up")
	f.DurationVar(&wait, "ready-timeout", 3*time.Minute, "how long to wait for a Consul leader before reporting a problem")
	cmd.AddCommand(newDevStatusCommand(), newDevStopCommand(), newDevFaultCommand())
	return cmd
}

// devState finds the running dev cluster: the one of --work-dir if given,
// else the last one started (~/.dcos-consul/dev.json).
func devState(workDir string) (devstate.State, error) {
	path := ""
	if workDir != "" {
		path = devstate.InWorkDir(workDir)
	} else {
		p, err := devstate.WellKnown(os.LookupEnv)
		if err != nil {
			return devstate.State{}, err
		}
		path = p
	}
	st, err := devstate.Read(path)
	if errors.Is(err, devstate.ErrNotRunning) {
		return st, fmt.Errorf("%w: start one with `dcos-consul dev` (or pass the --work-dir of the one you mean)", err)
	}
	return st, err
}

func newDevStatusCommand() *cobra.Command {
	var workDir string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the status of the running dev cluster and where everything is",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := devState(workDir)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			s := dev.StatusOf(ctx, st)
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "dev cluster of %s (pid %d, up %s)\n", st.WorkDir, st.PID, time.Since(st.Started).Round(time.Second))
			fmt.Fprintln(out, s.Line())
			if s.Waiting != "" {
				fmt.Fprintf(out, "waiting: %s\n", s.Waiting)
			}
			if s.Leader != "" {
				fmt.Fprintf(out, "\n%s", dev.Summary(s, st.SchedulerURL, st.MasterURL, st.MesosDNS, st.WorkDir))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&workDir, "work-dir", "", "the dev cluster's work dir (default: the last one started)")
	return cmd
}

func newDevStopCommand() *cobra.Command {
	var (
		workDir string
		wait    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "stop",
		Short: "Stop the running dev cluster (as Ctrl-C in its terminal does)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := devState(workDir)
			if err != nil {
				return err
			}
			if err := syscall.Kill(st.PID, syscall.SIGTERM); err != nil {
				return fmt.Errorf("stopping dev (pid %d): %w", st.PID, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Stopping the dev cluster of %s (pid %d) ...\n", st.WorkDir, st.PID)
			deadline := time.Now().Add(wait)
			for devstate.Alive(st.PID) {
				if time.Now().After(deadline) {
					return fmt.Errorf("dev (pid %d) still runs after %s; see %s/dev.log", st.PID, wait, st.WorkDir)
				}
				time.Sleep(200 * time.Millisecond)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Stopped.")
			return nil
		},
	}
	cmd.Flags().StringVar(&workDir, "work-dir", "", "the dev cluster's work dir (default: the last one started)")
	cmd.Flags().DurationVar(&wait, "wait", 2*time.Minute, "how long to wait for everything to stop")
	return cmd
}

func newDevFaultCommand() *cobra.Command {
	var workDir string
	fault := &cobra.Command{
		Use:   "fault",
		Short: "Inject a fault into the running dev cluster and watch it heal",
	}
	fault.PersistentFlags().StringVar(&workDir, "work-dir", "", "the dev cluster's work dir (default: the last one started)")
	run := func(f func(context.Context, devstate.State, string) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			st, err := devState(workDir)
			if err != nil {
				return err
			}
			arg := ""
			if len(args) > 0 {
				arg = args[0]
			}
			return f(cmd.Context(), st, arg)
		}
	}
	fault.AddCommand(
		&cobra.Command{Use: "kill-server [pod]", Short: "Kill a Consul server's executor (default: the highest-numbered running server); the scheduler relaunches it in place",
			Args: cobra.MaximumNArgs(1), RunE: run(func(ctx context.Context, st devstate.State, pod string) error {
				return dev.KillServer(ctx, st, pod, os.Stdout)
			})},
		&cobra.Command{Use: "remove-agent [pod|agent-id]", Short: "Remove a Mesos agent for good (default: a server's); its server is replaced elsewhere",
			Args: cobra.MaximumNArgs(1), RunE: run(func(ctx context.Context, st devstate.State, target string) error {
				return dev.RemoveAgent(ctx, st, target, os.Stdout)
			})},
		&cobra.Command{Use: "restart-master", Short: "Restart the Mesos master; the scheduler re-subscribes and reconciles",
			Args: cobra.NoArgs, RunE: run(func(ctx context.Context, st devstate.State, _ string) error {
				return dev.RestartMaster(ctx, st, os.Stdout)
			})},
	)
	return fault
}
