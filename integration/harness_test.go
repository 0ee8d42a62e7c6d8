// Package integration runs whole vivace processes on 127.0.0.1 and talks to
// them only through their public ports, with real clients.
package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// vivaceBin is the binary built once for the whole package.
var vivaceBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vivace-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	vivaceBin = filepath.Join(dir, "vivace")
	build := exec.Command("go", "build", "-o", vivaceBin, "../cmd/vivace")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build vivace:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// vivace is one vivace process. Its ports stay the same across restarts.
type vivace struct {
	t             testing.TB
	args          []string
	env           []string
	dataDir       string
	logPath       string
	HTTP          string // host:port of the API
	GRPC          string // host:port of the internal gRPC server
	Memberlist    string // host:port of memberlist gossip
	OTLPGRPC      string
	OTLPHTTP      string
	Zipkin        string
	JaegerHTTP    string
	JaegerGRPC    string
	JaegerBinary  string // UDP
	JaegerCompact string // UDP
	Datadog       string
	OpenCensus    string

	cmd  *exec.Cmd
	done chan struct{}
}

// startVivace runs vivace with config (YAML, may be empty) and extra flags,
// with every port on 127.0.0.1 and data under a fresh directory, and waits
// until /ready answers 200.
func startVivace(t testing.TB, config string, env []string, flags ...string) *vivace {
	t.Helper()
	dir := t.TempDir()
	ports := freePorts(t, 10)
	udp := freeUDPPorts(t, 2)
	cfgPath := filepath.Join(dir, "vivace.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(config), 0o644))
	v := &vivace{
		t:       t,
		dataDir: dir,
		logPath: filepath.Join(dir, "vivace.log"),
		env:     env,
		HTTP:    fmt.Sprintf("127.0.0.1:%d", ports[0]),
		GRPC:    fmt.Sprintf("127.0.0.1:%d", ports[1]),
		// Memberlist gossips over TCP and UDP on one port number; a free TCP
		// port is free for UDP often enough here, and the process fails
		// loudly if not.
		Memberlist: fmt.Sprintf("127.0.0.1:%d", ports[7]),
		OTLPGRPC:   fmt.Sprintf("127.0.0.1:%d", ports[2]),
		OTLPHTTP:   fmt.Sprintf("127.0.0.1:%d", ports[3]),

		Zipkin:        fmt.Sprintf("127.0.0.1:%d", ports[4]),
		JaegerHTTP:    fmt.Sprintf("127.0.0.1:%d", ports[5]),
		JaegerGRPC:    fmt.Sprintf("127.0.0.1:%d", ports[6]),
		JaegerBinary:  fmt.Sprintf("127.0.0.1:%d", udp[0]),
		JaegerCompact: fmt.Sprintf("127.0.0.1:%d", udp[1]),
		Datadog:       fmt.Sprintf("127.0.0.1:%d", ports[8]),
		OpenCensus:    fmt.Sprintf("127.0.0.1:%d", ports[9]),
	}
	v.args = append([]string{
		"-config.file=" + cfgPath,
		"-server.http-listen-address=127.0.0.1",
		"-server.http-listen-port=" + strconv.Itoa(ports[0]),
		"-server.grpc-listen-address=127.0.0.1",
		"-server.grpc-listen-port=" + strconv.Itoa(ports[1]),
		"-distributor.receivers.otlp.grpc.endpoint=" + v.OTLPGRPC,
		"-distributor.receivers.otlp.http.endpoint=" + v.OTLPHTTP,
		"-distributor.receivers.zipkin.endpoint=" + v.Zipkin,
		"-distributor.receivers.jaeger.thrift-http.endpoint=" + v.JaegerHTTP,
		"-distributor.receivers.jaeger.grpc.endpoint=" + v.JaegerGRPC,
		"-distributor.receivers.jaeger.thrift-binary.endpoint=" + v.JaegerBinary,
		"-distributor.receivers.jaeger.thrift-compact.endpoint=" + v.JaegerCompact,
		"-distributor.receivers.datadog.endpoint=" + v.Datadog,
		"-distributor.receivers.opencensus.endpoint=" + v.OpenCensus,
		"-storage.trace.wal.path=" + filepath.Join(dir, "wal"),
		"-storage.trace.local.path=" + filepath.Join(dir, "blocks"),
		"-ingester.flush-check-period=100ms",
		"-memberlist.bind-addr=127.0.0.1",
		"-memberlist.bind-port=" + strconv.Itoa(ports[7]),
		"-ingester.lifecycler.addr=127.0.0.1",
		"-distributor.ring.instance-addr=127.0.0.1",
		"-compactor.ring.instance-addr=127.0.0.1",
		// modeltest's spans are from March 2026: keep them.
		"-compactor.compaction.block-retention=100000h",
	}, flags...)
	v.start()
	t.Cleanup(func() {
		if v.running() {
			v.kill()
		}
		if t.Failed() {
			v.dumpLog()
		}
	})
	return v
}

func (v *vivace) start() {
	v.t.Helper()
	logf, err := os.OpenFile(v.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	require.NoError(v.t, err)
	defer logf.Close()
	fmt.Fprintf(logf, "=== start %s\n", time.Now().Format(time.RFC3339Nano))
	v.cmd = exec.Command(vivaceBin, v.args...)
	v.cmd.Dir = v.dataDir
	v.cmd.Env = append(os.Environ(), v.env...)
	v.cmd.Stdout, v.cmd.Stderr = logf, logf
	require.NoError(v.t, v.cmd.Start())
	v.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(v.cmd, v.done)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + v.HTTP + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if !v.running() {
			v.dumpLog()
			v.t.Fatalf("vivace exited before it was ready")
		}
		if time.Now().After(deadline) {
			v.dumpLog()
			v.t.Fatalf("vivace not ready after 60s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (v *vivace) running() bool {
	select {
	case <-v.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL: no shutdown code runs.
func (v *vivace) kill() {
	_ = v.cmd.Process.Signal(syscall.SIGKILL)
	<-v.done
}

// stop sends SIGTERM and waits for a graceful exit.
func (v *vivace) stop() {
	v.t.Helper()
	require.NoError(v.t, v.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-v.done:
	case <-time.After(2 * time.Minute):
		v.kill()
		v.t.Fatalf("vivace did not stop within 2 minutes of SIGTERM")
	}
}

func (v *vivace) restart() {
	v.t.Helper()
	if v.running() {
		v.stop()
	}
	v.start()
}

func (v *vivace) dumpLog() {
	b, _ := os.ReadFile(v.logPath)
	if len(b) > 20000 {
		b = b[len(b)-20000:]
	}
	v.t.Logf("vivace log (%s):\n%s", v.logPath, b)
}

// flush asks the ingester to cut its head and waits until n blocks in all
// have been written since the process started.
func (v *vivace) flushAndWait(n int) {
	v.t.Helper()
	resp, err := http.Post("http://"+v.HTTP+"/flush", "", nil)
	require.NoError(v.t, err)
	resp.Body.Close()
	require.Equal(v.t, http.StatusNoContent, resp.StatusCode)
	require.Eventually(v.t, func() bool {
		return v.metric("vivace_ingester_blocks_flushed_total") >= float64(n)
	}, time.Minute, 50*time.Millisecond, "no block flushed")
}

// metric reads a metric from /metrics: the sum of its series (0 if absent).
func (v *vivace) metric(name string) float64 {
	v.t.Helper()
	resp, err := http.Get("http://" + v.HTTP + "/metrics")
	require.NoError(v.t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	sum := 0.0
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		require.NoError(v.t, err)
		sum += f
	}
	return sum
}

// get performs a GET on the API with headers given as name, value pairs.
func (v *vivace) get(path string, headers ...string) (int, []byte, http.Header) {
	v.t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+v.HTTP+path, nil)
	require.NoError(v.t, err)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	require.NoError(v.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(v.t, err)
	return resp.StatusCode, b, resp.Header
}

// freePorts picks n TCP ports that are free for TCP and UDP (memberlist
// uses both). They come from below the kernel's ephemeral range, so no
// outgoing connection takes one between now and the process binding it, or
// while a killed process is down; and never twice in one test binary.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		require.Less(t, tries, 10000, "no free port below the ephemeral range")
		p := 10000 + rand.IntN(ephemeralLow()-10000)
		if portsUsed[p] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		c, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		l.Close()
		if err != nil {
			continue
		}
		c.Close()
		portsUsed[p] = true
		ports = append(ports, p)
	}
	return ports
}

var (
	portsMu   sync.Mutex
	portsUsed = map[int]bool{}
)

// ephemeralLow is the first port the kernel hands out for outgoing
// connections (32768 when unknown).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if lo, err := strconv.Atoi(f[0]); err == nil && lo > 11000 {
				return lo
			}
		}
	}
	return 32768
}

func freeUDPPorts(t testing.TB, n int) []int { return freePorts(t, n) }

// countActive counts the ACTIVE instances on a ring status page.
func countActive(page []byte) int {
	return strings.Count(string(page), ">ACTIVE<")
}
