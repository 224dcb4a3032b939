// Command testexecutor is a small custom Mesos executor for the simulated
// agent's tests. It speaks the v1 executor API through mesos-go's executor
// libraries, reports TASK_STARTING then TASK_RUNNING for every task, answers
// KILL with TASK_KILLING (when the framework has TASK_KILLING_STATE) then
// TASK_KILLED, and can be told to misbehave:
//
//	env TESTEXEC_NO_SUBSCRIBE=1     never subscribe
//	env TESTEXEC_CODEC=protobuf     use protobuf instead of JSON
//	env TESTEXEC_IGNORE_SHUTDOWN=1  ignore SHUTDOWN and SIGTERM
//	env TESTEXEC_SILENT_SHUTDOWN=1  exit 0 on SHUTDOWN without any update
//	task data "crash"               exit 7 right after TASK_RUNNING
//	task data "finish"              TASK_FINISHED right after TASK_RUNNING
//	message "echo:<x>"              send MESSAGE <x> back
//	message "hold:<task>"           make a TASK_RUNNING update for <task> that
//	                                is never POSTed, only replayed on re-SUBSCRIBE
//	message "crash"                 exit 9
//
// It writes env.txt (its environment, sorted), pid.txt and events.log (one
// line per event received) into its working directory.
package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/executor/calls"
	"github.com/mesos/mesos-go/api/v1/lib/executor/config"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpexec"
)

type state struct {
	cfg            config.Config
	cli            calls.Sender
	framework      mesos.FrameworkInfo
	executorInfo   mesos.ExecutorInfo
	tasks          map[string]mesos.TaskInfo
	running        map[string]bool
	unackedTasks   map[string]mesos.TaskInfo
	unackedUpdates map[string]executor.Call_Update
	log            *os.File
	quit           bool
}

func main() {
	env := os.Environ()
	sort.Strings(env)
	_ = os.WriteFile("env.txt", []byte(strings.Join(env, "\n")+"\n"), 0o644)
	_ = os.WriteFile("pid.txt", []byte(fmt.Sprint(os.Getpid())), 0o644)
	cfg, err := config.FromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "config:", err)
		os.Exit(2)
	}
	if os.Getenv("TESTEXEC_NO_SUBSCRIBE") == "1" {
		time.Sleep(time.Hour)
		return
	}
	if os.Getenv("TESTEXEC_IGNORE_SHUTDOWN") == "1" {
		signal.Ignore(syscall.SIGTERM)
	}
	logf, _ := os.OpenFile("events.log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	codec := codecs.ByMediaType[codecs.MediaTypeJSON]
	if os.Getenv("TESTEXEC_CODEC") == "protobuf" {
		codec = codecs.ByMediaType[codecs.MediaTypeProtobuf]
	}
	endpoint := url.URL{Scheme: "http", Host: cfg.AgentEndpoint, Path: "/api/v1/executor"}
	http := httpcli.New(
		httpcli.Endpoint(endpoint.String()),
		httpcli.Codec(codec),
		httpcli.Do(httpcli.With(httpcli.Timeout(10*time.Second))),
	)
	if tok := os.Getenv("MESOS_EXECUTOR_AUTHENTICATION_TOKEN"); tok != "" && os.Getenv("TESTEXEC_NO_TOKEN") != "1" {
		http.With(httpcli.RequestOptions(httpcli.Header("Authorization", "Bearer "+tok)))
	}
	opts := executor.CallOptions{calls.Framework(cfg.FrameworkID), calls.Executor(cfg.ExecutorID)}
	s := &state{
		cfg:            cfg,
		cli:            calls.SenderWith(httpexec.NewSender(http.Send), opts...),
		tasks:          map[string]mesos.TaskInfo{},
		running:        map[string]bool{},
		unackedTasks:   map[string]mesos.TaskInfo{},
		unackedUpdates: map[string]executor.Call_Update{},
		log:            logf,
	}
	subscriber := calls.SenderWith(httpexec.NewSender(http.Send, httpcli.Close(true)), opts...)
	disconnected := time.Now()
	for {
		var tasks []mesos.TaskInfo
		for _, t := range s.unackedTasks {
			tasks = append(tasks, t)
		}
		var updates []executor.Call_Update
		for _, u := range s.unackedUpdates {
			updates = append(updates, u)
		}
		resp, err := subscriber.Send(context.Background(), calls.NonStreaming(calls.Subscribe(tasks, updates)))
		if err == nil {
			s.logf("CONNECTED")
			err = s.loop(resp)
			resp.Close()
			disconnected = time.Now()
		}
		s.logf("DISCONNECTED %v", err)
		if s.quit {
			os.Exit(0)
		}
		if !cfg.Checkpoint || time.Since(disconnected) > cfg.RecoveryTimeout {
			os.Exit(0)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (s *state) logf(format string, args ...interface{}) {
	if s.log != nil {
		fmt.Fprintf(s.log, format+"\n", args...)
	}
}

func (s *state) loop(dec encoding.Decoder) error {
	for !s.quit {
		var e executor.Event
		if err := dec.Decode(&e); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		s.handle(&e)
	}
	return nil
}

func (s *state) handle(e *executor.Event) {
	switch e.Type {
	case executor.Event_SUBSCRIBED:
		sub := e.Subscribed
		s.framework, s.executorInfo = sub.FrameworkInfo, sub.ExecutorInfo
		s.logf("SUBSCRIBED container=%s agent=%s host=%s", sub.ContainerID.GetValue(), sub.AgentInfo.ID.GetValue(), sub.AgentInfo.Hostname)
	case executor.Event_LAUNCH:
		s.logf("LAUNCH %s", e.Launch.Task.TaskID.Value)
		s.launch(e.Launch.Task)
	case executor.Event_LAUNCH_GROUP:
		var ids []string
		for _, t := range e.LaunchGroup.TaskGroup.Tasks {
			ids = append(ids, t.TaskID.Value)
		}
		s.logf("LAUNCH_GROUP %s", strings.Join(ids, ","))
		for _, t := range e.LaunchGroup.TaskGroup.Tasks {
			s.launch(t)
		}
	case executor.Event_KILL:
		grace := ""
		if p := e.Kill.KillPolicy; p != nil && p.GracePeriod != nil {
			grace = time.Duration(p.GracePeriod.Nanoseconds).String()
		}
		s.logf("KILL %s grace=%s", e.Kill.TaskID.Value, grace)
		s.kill(e.Kill.TaskID.Value, "killed by testexecutor")
	case executor.Event_ACKNOWLEDGED:
		s.logf("ACKNOWLEDGED %s %x", e.Acknowledged.TaskID.Value, e.Acknowledged.UUID)
		delete(s.unackedTasks, e.Acknowledged.TaskID.Value)
		delete(s.unackedUpdates, string(e.Acknowledged.UUID))
	case executor.Event_MESSAGE:
		data := string(e.Message.Data)
		s.logf("MESSAGE %s", data)
		switch {
		case strings.HasPrefix(data, "echo:"):
			_ = calls.SendNoData(context.Background(), s.cli, calls.NonStreaming(calls.Message([]byte(strings.TrimPrefix(data, "echo:")))))
		case strings.HasPrefix(data, "hold:"):
			st := s.status(strings.TrimPrefix(data, "hold:"), mesos.TASK_RUNNING)
			st.Message = proto("replayed")
			s.unackedUpdates[string(st.UUID)] = executor.Call_Update{Status: st}
		case data == "crash":
			os.Exit(9)
		}
	case executor.Event_SHUTDOWN:
		s.logf("SHUTDOWN")
		if os.Getenv("TESTEXEC_IGNORE_SHUTDOWN") == "1" {
			return
		}
		if os.Getenv("TESTEXEC_SILENT_SHUTDOWN") != "1" {
			var ids []string
			for id := range s.running {
				ids = append(ids, id)
			}
			sort.Strings(ids)
			for _, id := range ids {
				s.kill(id, "shut down by testexecutor")
			}
		}
		s.quit = true
	case executor.Event_ERROR:
		s.logf("ERROR %s", e.Error.Message)
	case executor.Event_HEARTBEAT:
		s.logf("HEARTBEAT")
	default:
		s.logf("UNKNOWN %v", e.Type)
	}
}

func proto(s string) *string { return &s }

func (s *state) status(taskID string, st mesos.TaskState) mesos.TaskStatus {
	u := uuid.New()
	id := s.executorInfo.ExecutorID
	ts := float64(time.Now().UnixNano()) / 1e9
	return mesos.TaskStatus{
		TaskID:     mesos.TaskID{Value: taskID},
		State:      st.Enum(),
		Source:     mesos.SOURCE_EXECUTOR.Enum(),
		ExecutorID: &id,
		UUID:       u[:],
		Timestamp:  &ts,
	}
}

func (s *state) update(st mesos.TaskStatus) {
	call := calls.Update(st)
	s.unackedUpdates[string(st.UUID)] = *call.Update
	if err := calls.SendNoData(context.Background(), s.cli, calls.NonStreaming(call)); err != nil {
		s.logf("UPDATE-ERROR %s %s %v", st.TaskID.Value, st.State, err)
	}
}

func (s *state) launch(t mesos.TaskInfo) {
	id := t.TaskID.Value
	s.tasks[id] = t
	s.unackedTasks[id] = t
	s.update(s.status(id, mesos.TASK_STARTING))
	s.update(s.status(id, mesos.TASK_RUNNING))
	s.running[id] = true
	switch string(t.Data) {
	case "crash":
		os.Exit(7)
	case "finish":
		delete(s.running, id)
		s.update(s.status(id, mesos.TASK_FINISHED))
	}
}

func (s *state) kill(id, msg string) {
	if !s.running[id] {
		return
	}
	for _, c := range s.framework.Capabilities {
		if c.Type == mesos.FrameworkInfo_Capability_TASK_KILLING_STATE {
			s.update(s.status(id, mesos.TASK_KILLING))
		}
	}
	st := s.status(id, mesos.TASK_KILLED)
	st.Message = proto(msg)
	s.update(st)
	delete(s.running, id)
}
