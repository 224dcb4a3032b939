package operator

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// Info is the one line the DC/OS CLI shows for `dcos consul` (it
// runs `dcos-consul consul --info` to learn it).
const Info = "Manage the Consul service: plans, pods, endpoints, members and raft peers"

// Command is `dcos-consul consul ...`, which is also what the DC/OS
// CLI runs for `dcos consul ...` (a plugin gets its command name as argv[1]).
func Command() *cobra.Command {
	var (
		info    bool
		urlFlag string
		name    string
		asJSON  bool
		timeout time.Duration
	)
	root := &cobra.Command{
		Use:   "consul",
		Short: Info,
		Long: Info + `.

Where the scheduler is: --url or DCOS_CONSUL_URL (e.g. the "Scheduler API"
address dcos-consul dev prints); otherwise <DCOS_URL>/service/<--name>, with
DCOS_ACS_TOKEN, as the DC/OS CLI passes them to "dcos consul"; otherwise the
attached cluster of the DC/OS CLI configuration (~/.dcos, DCOS_DIR,
DCOS_CLUSTER). The default --name is DCOS_CONSUL_SERVICE_NAME
("dcos config set consul.service_name <name>"), else "consul".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if info {
				fmt.Fprintln(cmd.OutOrStdout(), Info)
				return nil
			}
			return cmd.Help()
		},
	}
	root.Flags().BoolVar(&info, "info", false, "print a one-line description (for the DC/OS CLI)")
	_ = root.Flags().MarkHidden("info")
	pf := root.PersistentFlags()
	pf.StringVar(&urlFlag, "url", "", "scheduler API address, e.g. http://127.0.0.1:PORT (default: $"+EnvURL+", else the DC/OS cluster's /service/<name>)")
	pf.StringVar(&name, "name", "", "service name, with its Marathon folder if any (default: $"+EnvServiceName+", else consul)")
	pf.BoolVar(&asJSON, "json", false, "print JSON instead of tables")
	pf.DurationVar(&timeout, "timeout", time.Minute, "timeout of each request")

	// run builds the commands' client for this invocation and runs f with
	// a context that Ctrl-C cancels and the first argument, if any.
	run := func(consulAddr *string, f func(*Commands, context.Context, string) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			env := LookupEnv(os.LookupEnv)
			loc, err := Locate(urlFlag, ServiceName(name, env), env)
			if err != nil {
				return err
			}
			client, err := NewClient(loc, timeout)
			if err != nil {
				return err
			}
			ops := &Commands{Client: client, Out: cmd.OutOrStdout(), Err: cmd.ErrOrStderr(), JSON: asJSON,
				Consul: HTTPConsul{Timeout: 10 * time.Second}}
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
	sub := func(use, short string, args cobra.PositionalArgs, f func(*Commands, context.Context, string) error) *cobra.Command {
		return &cobra.Command{Use: use, Short: short, Args: args, RunE: run(nil, f)}
	}
	noArg := func(f func(*Commands, context.Context) error) func(*Commands, context.Context, string) error {
		return func(o *Commands, ctx context.Context, _ string) error { return f(o, ctx) }
	}

	plan := &cobra.Command{Use: "plan", Short: "Show and operate the plans (deploy, update, recovery, decommission)"}
	plan.AddCommand(
		sub("list", "List the plans", cobra.NoArgs, noArg((*Commands).PlanList)),
		sub("show [plan]", "Show a plan's phases and steps (default: deploy)", cobra.MaximumNArgs(1), (*Commands).PlanShow),
	)
	for _, v := range []struct{ verb, short string }{
		{"pause", "Pause a plan or one of its phases (the next server or client batch of a rolling restart, the next removal waits)"},
		{"resume", "Resume a paused plan or phase"},
		{"force-complete", "Mark a plan, phase or step complete: rolling-restart steps are skipped, their tasks keep running as launched"},
		{"restart", "Restart a step: its pod is restarted in place, through the quorum gate"},
		{"start", "Start (resume) a plan; a complete deploy or update plan runs again (rolling restart)"},
		{"stop", "Stop (pause) a plan"},
	} {
		verb := v.verb
		plan.AddCommand(&cobra.Command{Use: verb + " <plan> [phase [step]]", Short: v.short, Args: cobra.RangeArgs(1, 3),
			RunE: func(cmd *cobra.Command, args []string) error {
				return run(nil, func(o *Commands, ctx context.Context, _ string) error { return o.PlanOp(ctx, verb, args) })(cmd, args)
			}})
	}

	update := &cobra.Command{Use: "update", Short: "Change the service's options and follow the rollout"}
	var optionsFile, cosmosURL string
	var replace bool
	start := &cobra.Command{Use: "start --options FILE", Short: "Update the service's options through Cosmos (dev: its stand-in); the scheduler restarts with them and rolls them out",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if optionsFile == "" {
				return fmt.Errorf("--options FILE is required (a JSON object of package options, e.g. {\"servers\": {\"cpus\": 1}})")
			}
			b, err := os.ReadFile(optionsFile)
			if err != nil {
				return err
			}
			if cosmosURL == "" {
				cosmosURL = os.Getenv(EnvCosmosURL)
			}
			if cosmosURL == "" {
				cosmosURL = DevCosmosURL(LookupEnv(os.LookupEnv)) // a running dev's stand-in
			}
			service := ServiceName(name, LookupEnv(os.LookupEnv))
			return run(nil, func(o *Commands, ctx context.Context, _ string) error {
				return o.UpdateStart(ctx, cosmosURL, service, b, replace)
			})(cmd, args)
		}}
	start.Flags().StringVar(&optionsFile, "options", "", "JSON file of package options (merged over the current ones)")
	start.Flags().BoolVar(&replace, "replace", false, "replace the current options instead of merging over them")
	start.Flags().StringVar(&cosmosURL, "cosmos", "", "Cosmos address (default: $"+EnvCosmosURL+", else the DC/OS cluster's)")
	update.AddCommand(start, sub("status", "Show the update plan: every task on the target configuration or waiting for its turn (same as plan show update)",
		cobra.NoArgs, func(o *Commands, ctx context.Context, _ string) error { return o.PlanShow(ctx, "update") }))

	pod := &cobra.Command{Use: "pod", Short: "Show, restart and replace the Consul tasks"}
	pod.AddCommand(
		sub("list", "List the pods", cobra.NoArgs, noArg((*Commands).PodList)),
		sub("status [pod]", "Show the state of every pod, or of one", cobra.MaximumNArgs(1), (*Commands).PodStatus),
		sub("info <pod>", "Show everything the scheduler knows of a pod", cobra.ExactArgs(1), (*Commands).PodInfo),
		sub("restart <pod>", "Kill a pod's task and relaunch it in place (same agent, same data)", cobra.ExactArgs(1), (*Commands).PodRestart),
		sub("replace <pod>", "Relaunch a pod from scratch on any agent that suits (a server gets a new reservation and an empty volume, and rejoins)", cobra.ExactArgs(1), (*Commands).PodReplace),
	)

	endpoints := sub("endpoints [name]", "List the endpoints, or show one's addresses", cobra.MaximumNArgs(1), (*Commands).Endpoints)

	consulFlag := func(c *cobra.Command, dst *string) *cobra.Command {
		c.Flags().StringVar(dst, "consul", "", "Consul HTTP address to ask (host:port or URL; default: the servers the scheduler lists)")
		return c
	}
	var membersConsul, peersConsul string
	var membersWAN bool
	members := consulFlag(&cobra.Command{Use: "members", Short: "Show Consul's LAN members (--wan: the WAN pool of every federated datacenter's servers): name, address, status, role", Args: cobra.NoArgs,
		RunE: run(&membersConsul, func(o *Commands, ctx context.Context, _ string) error {
			if membersWAN {
				o.Consul = HTTPConsul{Timeout: 10 * time.Second, WAN: true}
			}
			return o.Members(ctx)
		})}, &membersConsul)
	members.Flags().BoolVar(&membersWAN, "wan", false, "the WAN pool (servers of every federated datacenter) instead of the LAN pool")
	raft := &cobra.Command{Use: "raft", Short: "Show Consul's raft state"}
	raft.AddCommand(consulFlag(&cobra.Command{Use: "peers", Short: "Show the raft peers: node, address, leader, voter", Args: cobra.NoArgs,
		RunE: run(&peersConsul, noArg((*Commands).RaftPeers))}, &peersConsul))

	snapshot := &cobra.Command{Use: "snapshot", Short: "Save, list and restore Consul snapshots (kept in the backup target)"}
	snapshot.AddCommand(
		sub("save", "Take a snapshot from Consul's leader now and store it", cobra.NoArgs, noArg((*Commands).SnapshotSave)),
		sub("list", "List the stored snapshots, oldest first", cobra.NoArgs, noArg((*Commands).SnapshotList)),
		sub("restore <name>", "Restore a stored snapshot into the running cluster (replaces its whole state)", cobra.ExactArgs(1), (*Commands).SnapshotRestore),
	)

	keyring := &cobra.Command{Use: "keyring", Short: "Manage Consul's gossip encryption key"}
	keyring.AddCommand(sub("rotate", "Install a new gossip key on every agent, switch to it and remove the old one (needs the operator token)",
		cobra.NoArgs, noArg((*Commands).KeyringRotate)))

	var confirm bool
	recover := &cobra.Command{Use: "recover", Short: "Diagnose (status) and recover (--confirm) a Consul outage: quorum lost for good", Args: cobra.NoArgs,
		RunE: run(nil, func(o *Commands, ctx context.Context, _ string) error {
			if !confirm {
				return errors.New("recover: run `recover status` first; `recover --confirm` restarts the surviving servers with a peers.json naming only them")
			}
			return o.RecoverConfirm(ctx)
		})}
	recover.Flags().BoolVar(&confirm, "confirm", false, "restart the surviving servers with a peers.json naming only them (only while quorum is lost)")
	recover.AddCommand(sub("status", "Ask every server for its raft state: whether quorum is lost, which servers survive, whose raft log is freshest (changes nothing)",
		cobra.NoArgs, noArg((*Commands).RecoverStatus)))

	acl := &cobra.Command{Use: "acl", Short: "Consul ACLs (security.acl.enabled)"}
	acl.AddCommand(sub("management-token", "Print the Consul ACL management token (needs the operator token; keep it secret)",
		cobra.NoArgs, noArg((*Commands).ACLManagementToken)))
	acl.AddCommand(sub("rotate-management-token", "Replace the Consul ACL management token: create a new one, delete the old (needs the operator token)",
		cobra.NoArgs, noArg((*Commands).ACLRotateManagementToken)))

	tlsCmd := &cobra.Command{Use: "tls", Short: "Consul TLS (security.tls.enabled)"}
	tlsCmd.AddCommand(sub("ca", "Print the service's CA certificate (PEM, public): what callers verify Consul against, and what other federated installs trust (security.tls.trusted_ca_certs)",
		cobra.NoArgs, noArg((*Commands).TLSCA)))

	root.AddCommand(plan, update, pod, endpoints, members, raft, snapshot, keyring, acl, recover, tlsCmd)
	return root
}
