package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/dcos-consul/dcos-consul/internal/operator"
)

func init() { subcommands = append(subcommands, newConsulCommand) }

// consulInfo is the one line the DC/OS CLI shows for `dcos consul` (it
// runs `dcos-consul consul --info` to learn it).
const consulInfo = "Manage the Consul service: plans, pods, endpoints, members and raft peers"

// newConsulCommand is `dcos-consul consul ...`, which is also what the DC/OS
// CLI runs for `dcos consul ...` (a plugin gets its command name as argv[1]).
func newConsulCommand() *cobra.Command {
	var (
		info    bool
		urlFlag string
		name    string
		asJSON  bool
		timeout time.Duration
	)
	root := &cobra.Command{
		Use:   "consul",
		Short: consulInfo,
		Long: consulInfo + `.

Where the scheduler is: --url or DCOS_CONSUL_URL (e.g. the "Scheduler API"
address dcos-consul dev prints); otherwise <DCOS_URL>/service/<--name>, with
DCOS_ACS_TOKEN, as the DC/OS CLI passes them to "dcos consul"; otherwise the
attached cluster of the DC/OS CLI configuration (~/.dcos, DCOS_DIR,
DCOS_CLUSTER). The default --name is DCOS_CONSUL_SERVICE_NAME
("dcos config set consul.service_name <name>"), else "consul".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if info {
				fmt.Fprintln(cmd.OutOrStdout(), consulInfo)
				return nil
			}
			return cmd.Help()
		},
	}
	root.Flags().BoolVar(&info, "info", false, "print a one-line description (for the DC/OS CLI)")
	_ = root.Flags().MarkHidden("info")
	pf := root.PersistentFlags()
	pf.StringVar(&urlFlag, "url", "", "scheduler API address, e.g. http://127.0.0.1:PORT (default: $"+operator.EnvURL+", else the DC/OS cluster's /service/<name>)")
	pf.StringVar(&name, "name", "", "service name, with its Marathon folder if any (default: $"+operator.EnvServiceName+", else consul)")
	pf.BoolVar(&asJSON, "json", false, "print JSON instead of tables")
	pf.DurationVar(&timeout, "timeout", time.Minute, "timeout of each request")

	// run builds the commands' client for this invocation and runs f with
	// a context that Ctrl-C cancels and the first argument, if any.
	run := func(consulAddr *string, f func(*operator.Commands, context.Context, string) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			env := operator.LookupEnv(os.LookupEnv)
			loc, err := operator.Locate(urlFlag, operator.ServiceName(name, env), env)
			if err != nil {
				return err
			}
			client, err := operator.NewClient(loc, timeout)
			if err != nil {
				return err
			}
			ops := &operator.Commands{Client: client, Out: cmd.OutOrStdout(), Err: cmd.ErrOrStderr(), JSON: asJSON,
				Consul: operator.HTTPConsul{Timeout: 10 * time.Second}}
			if consulAddr != nil {
				ops.ConsulAddr = *consulAddr
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			arg := ""
			if len(args) > 0 {
				arg = args[0]
			}
			return f(ops, ctx, arg)
		}
	}
	sub := func(use, short string, args cobra.PositionalArgs, f func(*operator.Commands, context.Context, string) error) *cobra.Command {
		return &cobra.Command{Use: use, Short: short, Args: args, RunE: run(nil, f)}
	}
	noArg := func(f func(*operator.Commands, context.Context) error) func(*operator.Commands, context.Context, string) error {
		return func(o *operator.Commands, ctx context.Context, _ string) error { return f(o, ctx) }
	}

	plan := &cobra.Command{Use: "plan", Short: "Show the deployment plans"}
	plan.AddCommand(
		sub("list", "List the plans", cobra.NoArgs, noArg((*operator.Commands).PlanList)),
		sub("show [plan]", "Show a plan's phases and steps (default: deploy)", cobra.MaximumNArgs(1), (*operator.Commands).PlanShow),
	)

	pod := &cobra.Command{Use: "pod", Short: "Show, restart and replace the Consul tasks"}
	pod.AddCommand(
		sub("list", "List the pods", cobra.NoArgs, noArg((*operator.Commands).PodList)),
		sub("status [pod]", "Show the state of every pod, or of one", cobra.MaximumNArgs(1), (*operator.Commands).PodStatus),
		sub("info <pod>", "Show everything the scheduler knows of a pod", cobra.ExactArgs(1), (*operator.Commands).PodInfo),
		sub("restart <pod>", "Kill a pod's task and relaunch it in place (same agent, same data)", cobra.ExactArgs(1), (*operator.Commands).PodRestart),
		sub("replace <pod>", "Relaunch a pod from scratch on any agent that suits (a server gets a new reservation and an empty volume, and rejoins)", cobra.ExactArgs(1), (*operator.Commands).PodReplace),
	)

	endpoints := sub("endpoints [name]", "List the endpoints, or show one's addresses", cobra.MaximumNArgs(1), (*operator.Commands).Endpoints)

	consulFlag := func(c *cobra.Command, dst *string) *cobra.Command {
		c.Flags().StringVar(dst, "consul", "", "Consul HTTP address to ask (host:port or URL; default: the servers the scheduler lists)")
		return c
	}
	var membersConsul, peersConsul string
	var membersWAN bool
	members := consulFlag(&cobra.Command{Use: "members", Short: "Show Consul's LAN members (--wan: the WAN pool of every federated datacenter's servers): name, address, status, role", Args: cobra.NoArgs,
		RunE: run(&membersConsul, func(o *operator.Commands, ctx context.Context, _ string) error {
			if membersWAN {
				o.Consul = operator.HTTPConsul{Timeout: 10 * time.Second, WAN: true}
			}
			return o.Members(ctx)
		})}, &membersConsul)
	members.Flags().BoolVar(&membersWAN, "wan", false, "list the WAN members: the servers of this and every federated datacenter")
	raft := &cobra.Command{Use: "raft", Short: "Show Consul's raft state"}
	raft.AddCommand(consulFlag(&cobra.Command{Use: "peers", Short: "Show the raft peers: node, address, leader, voter", Args: cobra.NoArgs,
		RunE: run(&peersConsul, noArg((*operator.Commands).RaftPeers))}, &peersConsul))

	snapshot := &cobra.Command{Use: "snapshot", Short: "Save, list and restore Consul snapshots (kept in the backup target)"}
	snapshot.AddCommand(
		sub("save", "Take a snapshot from Consul's leader now and store it", cobra.NoArgs, noArg((*operator.Commands).SnapshotSave)),
		sub("list", "List the stored snapshots, oldest first", cobra.NoArgs, noArg((*operator.Commands).SnapshotList)),
		sub("restore <name>", "Restore a stored snapshot into the running cluster (replaces its whole state)", cobra.ExactArgs(1), (*operator.Commands).SnapshotRestore),
	)

	var confirm bool
	recover := &cobra.Command{Use: "recover", Short: "Diagnose (status) and recover (--confirm) a Consul outage: quorum lost for good", Args: cobra.NoArgs,
		RunE: run(nil, func(o *operator.Commands, ctx context.Context, _ string) error {
			if !confirm {
				return errors.New("recover: run `recover status` first; `recover --confirm` restarts the surviving servers with a peers.json naming only them")
			}
			return o.RecoverConfirm(ctx)
		})}
	recover.Flags().BoolVar(&confirm, "confirm", false, "restart the surviving servers with a peers.json naming only them (only while quorum is lost)")
	recover.AddCommand(sub("status", "Ask every server for its raft state: whether quorum is lost, which servers survive, whose raft log is freshest (changes nothing)",
		cobra.NoArgs, noArg((*operator.Commands).RecoverStatus)))

	root.AddCommand(plan, pod, endpoints, members, raft, snapshot, recover)
	return root
}
