// Package helm_test renders the chart in deploy/helm/vivace with a helm
// binary, decodes every manifest strictly into Kubernetes API types, checks
// the Services, probes, security context, disruption budgets and volumes,
// and loads the rendered Vivace config with Vivace's own config code for
// every role, with the environment each pod would have, so that the chart
// and the binary cannot drift apart.
package helm_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/vivace-dev/vivace/cmd/vivace/app"
	"github.com/vivace-dev/vivace/internal/overrides"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

const (
	chartDir  = "vivace"
	release   = "tracing"
	namespace = "observability"
	// Helm built with go install reports Kubernetes 1.20 unless told; the
	// chart needs 1.25 or later.
	kubeVersion = "1.30.0"
	domain      = "cluster.local"
	// Stands for the keys of a Secret the chart does not render.
	existingSecretValue = "from-an-existing: secret #1"
)

// receiverPorts are the receivers' ports by port name, as proxies and SDKs
// are told to use them.
var receiverPorts = map[string]corev1.ServicePort{
	"otlp-grpc":      {Port: 4317, Protocol: corev1.ProtocolTCP},
	"otlp-http":      {Port: 4318, Protocol: corev1.ProtocolTCP},
	"zipkin":         {Port: 9411, Protocol: corev1.ProtocolTCP},
	"jaeger-http":    {Port: 14268, Protocol: corev1.ProtocolTCP},
	"jaeger-grpc":    {Port: 14250, Protocol: corev1.ProtocolTCP},
	"jaeger-compact": {Port: 6831, Protocol: corev1.ProtocolUDP},
	"jaeger-binary":  {Port: 6832, Protocol: corev1.ProtocolUDP},
	"opencensus":     {Port: 55678, Protocol: corev1.ProtocolTCP},
	"datadog":        {Port: 8126, Protocol: corev1.ProtocolTCP},
}

// receiverEndpoints are the listen addresses of the receivers in cfg, by
// port name; empty means off.
func receiverEndpoints(cfg *app.Config) map[string]string {
	r := cfg.Distributor.Receivers
	j := r.Jaeger.Protocols
	return map[string]string{
		"otlp-grpc":      r.OTLP.Protocols.GRPC.Endpoint,
		"otlp-http":      r.OTLP.Protocols.HTTP.Endpoint,
		"zipkin":         r.Zipkin.Endpoint,
		"jaeger-http":    j.ThriftHTTP.Endpoint,
		"jaeger-grpc":    j.GRPC.Endpoint,
		"jaeger-compact": j.ThriftCompact.Endpoint,
		"jaeger-binary":  j.ThriftBinary.Endpoint,
		"opencensus":     r.OpenCensus.Endpoint,
		"datadog":        r.Datadog.Endpoint,
	}
}

// chartCase is one values file and what the chart must make of it.
type chartCase struct {
	name        string
	values      string // under testdata/values; empty for the chart's defaults
	distributed bool
	receivers   []string // port names of the receivers that must be on
	backend     string
	// s3Keys: the S3 keys come from a Secret the chart renders (or, with
	// existingSecret, one it does not); none means the IAM role.
	s3Keys         string // "rendered", "existing" or ""
	minio          bool
	emptyDirWAL    bool // persistence off: the WAL on an emptyDir
	retention      time.Duration
	serviceMonitor bool
	datasource     bool
	// everything: the values set receiverConfig, structuredConfig,
	// log_received_spans and overrides (defaults and perTenant), which the
	// loaded config and the runtime overrides file must show.
	everything bool
}

var cases = []chartCase{
	{
		name: "monolithic", backend: "local",
		receivers: []string{"otlp-grpc", "otlp-http", "zipkin"}, retention: 336 * time.Hour,
	},
	{
		name: "monolithic-existing-secret", values: "monolithic-existing-secret.yaml", backend: "s3", s3Keys: "existing", emptyDirWAL: true,
		receivers: []string{"zipkin", "jaeger-compact"}, retention: 336 * time.Hour,
	},
	{
		name: "distributed-s3", values: "distributed-s3.yaml", distributed: true, backend: "s3", s3Keys: "rendered",
		receivers:      []string{"otlp-grpc", "otlp-http", "zipkin", "jaeger-http", "jaeger-grpc", "jaeger-compact", "jaeger-binary", "opencensus", "datadog"},
		retention:      720 * time.Hour,
		serviceMonitor: true, datasource: true, everything: true,
	},
	{
		name: "distributed-minio", values: "distributed-minio.yaml", distributed: true, backend: "s3", s3Keys: "rendered", minio: true,
		receivers: []string{"otlp-grpc", "otlp-http", "zipkin"}, retention: 336 * time.Hour,
	},
	{
		name: "distributed-s3-iam", values: "distributed-s3-iam.yaml", distributed: true, backend: "s3",
		receivers: []string{"otlp-grpc", "otlp-http", "zipkin"}, retention: 336 * time.Hour,
	},
}

func TestChart(t *testing.T) {
	helm := helmBinary(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var args []string
			if c.values != "" {
				args = append(args, "-f", filepath.Join("testdata", "values", c.values))
			}
			lint, err := runHelm(helm, append([]string{"lint", "--strict", chartDir}, args...)...)
			require.NoError(t, err, "helm lint:\n%s", lint)

			out, err := runHelm(helm, append([]string{"template", release, chartDir}, args...)...)
			require.NoError(t, err, "helm template:\n%s", out)

			r := decode(t, out)
			r.checkWorkloads(t, c)
			r.checkServices(t, c)
			r.checkPods(t)
			r.checkPDBs(t, c)
			r.checkConfig(t, c)
			r.checkServiceMonitor(t, c)
			r.checkDatasource(t, c)
			golden(t, filepath.Join("testdata", "golden", c.name+".yaml"), out)
		})
	}
}

// TestChartRefuses renders values that cannot work: helm must fail and say why.
func TestChartRefuses(t *testing.T) {
	helm := helmBinary(t)
	for _, tc := range []struct {
		name string
		set  []string
		want string
	}{
		{"unknown mode", []string{"mode=single"}, `mode "single": want monolithic or distributed`},
		{"distributed on a local directory", []string{"mode=distributed"}, "mode=distributed needs object storage"},
		{"s3 without a bucket", []string{"storage.trace.backend=s3", "storage.trace.s3.endpoint=s3.amazonaws.com"}, "needs storage.trace.s3.bucket"},
		{"half a key pair", []string{"storage.trace.s3.access_key=AKIA"}, "access_key and secret_key go together"},
		{"no receiver", []string{"traces.otlp.grpc.enabled=false", "traces.otlp.http.enabled=false", "traces.zipkin.enabled=false"}, "no receiver is enabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"template", release, chartDir}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			out, err := runHelm(helm, args...)
			require.Error(t, err, "helm template rendered:\n%s", out)
			require.Contains(t, out, tc.want)
		})
	}
}

// TestPerTenantDoesNotRoll renders the chart again with one value changed:
// overrides.perTenant changes only the runtime overrides file, which Vivace
// reloads in place, so the pod templates stay the same and nothing restarts;
// overrides.defaults changes vivace.yaml, and the pods roll.
func TestPerTenantDoesNotRoll(t *testing.T) {
	helm := helmBinary(t)
	render := func(t *testing.T, set ...string) *rendered {
		t.Helper()
		args := []string{"template", release, chartDir}
		for _, s := range set {
			args = append(args, "--set", s)
		}
		out, err := runHelm(helm, args...)
		require.NoError(t, err, "helm template:\n%s", out)
		return decode(t, out)
	}
	base := render(t)
	for _, tc := range []struct {
		name  string
		set   string
		rolls bool
	}{
		{"perTenant", "overrides.perTenant.team-a.ingestion.rate_limit_bytes=1000", false},
		{"defaults", "overrides.defaults.ingestion.rate_limit_bytes=1000", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := render(t, tc.set)
			before, after := base.configMaps[name("config")].Data, r.configMaps[name("config")].Data
			require.NotEqual(t, before, after, "--set %s changes the config ConfigMap", tc.set)
			require.Equal(t, tc.rolls, before["vivace.yaml"] != after["vivace.yaml"], "vivace.yaml")
			require.Equal(t, !tc.rolls, before["overrides.yaml"] != after["overrides.yaml"], "overrides.yaml")
			require.Equal(t, slices.Sorted(maps.Keys(base.workloads)), slices.Sorted(maps.Keys(r.workloads)))
			for n, w := range base.workloads {
				if tc.rolls {
					require.NotEqual(t, w.pod, r.workloads[n].pod, "%s rolls", n)
				} else {
					require.Equal(t, w.pod, r.workloads[n].pod, "%s does not roll", n)
				}
			}
		})
	}
}

// helmBinary finds helm: $VIVACE_HELM, then where scripts/test installs it,
// then $PATH. Without one the tests skip, unless VIVACE_REQUIRE_HELM=1.
func helmBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("VIVACE_HELM"); p != "" {
		return p
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache")
		}
	}
	if cache != "" {
		p := filepath.Join(cache, "vivace", "bin", "helm")
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	msg := "no helm binary in $VIVACE_HELM, ${XDG_CACHE_HOME:-$HOME/.cache}/vivace/bin or $PATH; scripts/test installs it"
	if os.Getenv("VIVACE_REQUIRE_HELM") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func runHelm(helm string, args ...string) (string, error) {
	args = append(args, "--namespace", namespace, "--kube-version", kubeVersion)
	cmd := exec.Command(helm, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String() + stderr.String(), fmt.Errorf("helm %s: %w", strings.Join(args, " "), err)
	}
	return stdout.String(), nil
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./deploy/helm -update to write it")
	require.Equal(t, string(want), got, "%s is out of date: run go test ./deploy/helm -update and review the diff", path)
}

// serviceMonitor is the part of prometheus-operator's monitoring.coreos.com/v1
// ServiceMonitor that the chart uses, with the CRD's field names; decoding
// into it strictly catches a misspelt field.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path,omitempty"`
			Interval      string `json:"interval,omitempty"`
			ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// workload is a Deployment or StatefulSet.
type workload struct {
	kind, name  string
	serviceName string // a StatefulSet's
	replicas    int32
	pod         *corev1.PodTemplateSpec
	claims      []corev1.PersistentVolumeClaim
}

// container returns the workload's container called name, or nil.
func (w *workload) container(name string) *corev1.Container {
	for i := range w.pod.Spec.Containers {
		if w.pod.Spec.Containers[i].Name == name {
			return &w.pod.Spec.Containers[i]
		}
	}
	return nil
}

// rendered is the chart's output, by kind and name.
type rendered struct {
	workloads       map[string]*workload
	services        map[string]*corev1.Service
	configMaps      map[string]*corev1.ConfigMap
	secrets         map[string]*corev1.Secret
	pdbs            map[string]*policyv1.PodDisruptionBudget
	pvcs            map[string]*corev1.PersistentVolumeClaim
	serviceAccounts map[string]*corev1.ServiceAccount
	serviceMonitors map[string]*serviceMonitor
}

func name(role string) string { return release + "-" + role }

// decode splits the manifests and decodes each strictly (unknown or
// duplicate fields fail) into the API type its apiVersion and kind name.
func decode(t *testing.T, manifests string) *rendered {
	t.Helper()
	r := &rendered{
		workloads:       map[string]*workload{},
		services:        map[string]*corev1.Service{},
		configMaps:      map[string]*corev1.ConfigMap{},
		secrets:         map[string]*corev1.Secret{},
		pdbs:            map[string]*policyv1.PodDisruptionBudget{},
		pvcs:            map[string]*corev1.PersistentVolumeClaim{},
		serviceAccounts: map[string]*corev1.ServiceAccount{},
		serviceMonitors: map[string]*serviceMonitor{},
	}
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(manifests, -1) {
		var tm metav1.TypeMeta
		require.NoError(t, yaml.Unmarshal([]byte(doc), &tm), "manifest:\n%s", doc)
		if tm.Kind == "" {
			require.Empty(t, strings.TrimSpace(regexp.MustCompile(`(?m)^#.*$`).ReplaceAllString(doc, "")), "a manifest without a kind")
			continue
		}
		strict := func(obj interface{ GetName() string }) string {
			t.Helper()
			require.NoError(t, unmarshalStrict(doc, obj), "%s %s:\n%s", tm.APIVersion, tm.Kind, doc)
			require.NotEmpty(t, obj.GetName(), "%s without a name", tm.Kind)
			return obj.GetName()
		}
		unique := func(have bool, n string) {
			t.Helper()
			require.False(t, have, "two %s named %s", tm.Kind, n)
		}
		switch tm.APIVersion + " " + tm.Kind {
		case "apps/v1 Deployment":
			d := &appsv1.Deployment{}
			n := strict(d)
			_, have := r.workloads[n]
			unique(have, n)
			require.NotNil(t, d.Spec.Replicas, "deployment %s: replicas", n)
			r.workloads[n] = &workload{kind: tm.Kind, name: n, replicas: *d.Spec.Replicas, pod: &d.Spec.Template}
			requireSelects(t, d.Spec.Selector, d.Spec.Template.Labels, n)
		case "apps/v1 StatefulSet":
			s := &appsv1.StatefulSet{}
			n := strict(s)
			_, have := r.workloads[n]
			unique(have, n)
			require.NotNil(t, s.Spec.Replicas, "statefulset %s: replicas", n)
			r.workloads[n] = &workload{kind: tm.Kind, name: n, serviceName: s.Spec.ServiceName, replicas: *s.Spec.Replicas, pod: &s.Spec.Template, claims: s.Spec.VolumeClaimTemplates}
			requireSelects(t, s.Spec.Selector, s.Spec.Template.Labels, n)
		case "v1 Service":
			s := &corev1.Service{}
			n := strict(s)
			_, have := r.services[n]
			unique(have, n)
			r.services[n] = s
		case "v1 ConfigMap":
			c := &corev1.ConfigMap{}
			n := strict(c)
			_, have := r.configMaps[n]
			unique(have, n)
			r.configMaps[n] = c
		case "v1 Secret":
			s := &corev1.Secret{}
			n := strict(s)
			_, have := r.secrets[n]
			unique(have, n)
			r.secrets[n] = s
		case "v1 PersistentVolumeClaim":
			p := &corev1.PersistentVolumeClaim{}
			n := strict(p)
			_, have := r.pvcs[n]
			unique(have, n)
			r.pvcs[n] = p
		case "v1 ServiceAccount":
			s := &corev1.ServiceAccount{}
			n := strict(s)
			_, have := r.serviceAccounts[n]
			unique(have, n)
			r.serviceAccounts[n] = s
		case "policy/v1 PodDisruptionBudget":
			p := &policyv1.PodDisruptionBudget{}
			n := strict(p)
			_, have := r.pdbs[n]
			unique(have, n)
			r.pdbs[n] = p
		case "monitoring.coreos.com/v1 ServiceMonitor":
			s := &serviceMonitor{}
			n := strict(s)
			_, have := r.serviceMonitors[n]
			unique(have, n)
			r.serviceMonitors[n] = s
		default:
			t.Fatalf("the chart renders %s %s, which the test does not know: add it to decode", tm.APIVersion, tm.Kind)
		}
	}
	return r
}

// unmarshalStrict decodes YAML into v as the API server does with strict
// field validation: field names are case-sensitive (encoding/json would take
// readOnlyRootFileSystem for readOnlyRootFilesystem), and unknown or
// duplicate fields fail.
func unmarshalStrict(doc string, v any) error {
	j, err := yaml.YAMLToJSONStrict([]byte(doc))
	if err != nil {
		return err
	}
	strictErrs, err := kjson.UnmarshalStrict(j, v)
	if err != nil {
		return err
	}
	return errors.Join(strictErrs...)
}

func requireSelects(t *testing.T, sel *metav1.LabelSelector, podLabels map[string]string, what string) {
	t.Helper()
	require.NotNil(t, sel, "%s: selector", what)
	s, err := metav1.LabelSelectorAsSelector(sel)
	require.NoError(t, err, "%s: selector", what)
	require.False(t, s.Empty(), "%s: empty selector", what)
	require.True(t, s.Matches(labels.Set(podLabels)), "%s: the selector %v does not select its own pods %v", what, sel, podLabels)
}

// selected returns the names of the workloads whose pods sel matches.
func (r *rendered) selected(sel labels.Selector) []string {
	var names []string
	for n, w := range r.workloads {
		if sel.Matches(labels.Set(w.pod.Labels)) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// vivaceWorkloads are the workloads running Vivace, by the role they run.
func (r *rendered) vivaceWorkloads(t *testing.T) map[string]*workload {
	t.Helper()
	byTarget := map[string]*workload{}
	for _, w := range r.workloads {
		c := w.container("vivace")
		if c == nil {
			continue
		}
		target := ""
		for _, a := range c.Args {
			if v, ok := strings.CutPrefix(a, "-target="); ok {
				target = v
			}
		}
		require.NotEmpty(t, target, "%s runs vivace without -target", w.name)
		require.NotContains(t, byTarget, target, "two workloads run -target=%s", target)
		byTarget[target] = w
	}
	return byTarget
}

var distributedRoles = []string{"distributor", "ingester", "querier", "query-frontend", "compactor"}

func (r *rendered) checkWorkloads(t *testing.T, c chartCase) {
	byTarget := r.vivaceWorkloads(t)
	targets := slices.Sorted(maps.Keys(byTarget))
	if !c.distributed {
		require.Equal(t, []string{"all"}, targets)
		w := byTarget["all"]
		require.Equal(t, "StatefulSet", w.kind)
		require.Equal(t, release, w.name)
		require.EqualValues(t, 1, w.replicas, "monolithic keeps its rings in memory: one replica")
		requireGrace(t, w, 300)
	} else {
		want := slices.Clone(distributedRoles)
		sort.Strings(want)
		require.Equal(t, want, targets)
		for _, role := range distributedRoles {
			w := byTarget[role]
			require.Equal(t, name(role), w.name)
			kind := "Deployment"
			if role == "ingester" {
				kind = "StatefulSet"
			}
			require.Equal(t, kind, w.kind, role)
		}
		require.EqualValues(t, 3, byTarget["ingester"].replicas)
		requireGrace(t, byTarget["ingester"], 300)
	}
	// The WAL is on a PersistentVolumeClaim where it must outlive the pod.
	stateful := byTarget["all"]
	if c.distributed {
		stateful = byTarget["ingester"]
	}
	var claim *corev1.PersistentVolumeClaim
	for i := range stateful.claims {
		if stateful.claims[i].Name == "data" {
			claim = &stateful.claims[i]
		}
	}
	if !c.emptyDirWAL {
		require.NotNil(t, claim, "%s: no volumeClaimTemplate for its data", stateful.name)
		require.Equal(t, resource.MustParse("10Gi"), claim.Spec.Resources.Requests[corev1.ResourceStorage])
		require.Equal(t, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, claim.Spec.AccessModes)
	} else {
		require.Nil(t, claim)
		require.True(t, slices.ContainsFunc(stateful.pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == "data" && v.EmptyDir != nil }),
			"%s: persistence off puts the data on an emptyDir", stateful.name)
	}
	requireMount(t, stateful, "/var/vivace", "data")

	if c.minio {
		m := r.workloads[name("minio")]
		require.NotNil(t, m, "the bundled MinIO")
		require.Equal(t, "Deployment", m.kind)
		require.EqualValues(t, 1, m.replicas)
		require.Contains(t, r.pvcs, name("minio"))
		require.Contains(t, r.services, name("minio"))
	} else {
		require.NotContains(t, r.workloads, name("minio"))
	}
}

func requireGrace(t *testing.T, w *workload, atLeast int64) {
	t.Helper()
	g := w.pod.Spec.TerminationGracePeriodSeconds
	require.NotNil(t, g, "%s: terminationGracePeriodSeconds", w.name)
	require.GreaterOrEqual(t, *g, atLeast, "%s flushes its WAL when it stops: give it time", w.name)
}

// requireMount checks that path is mounted writable in the vivace container
// from the volume or claim called volume.
func requireMount(t *testing.T, w *workload, path, volume string) {
	t.Helper()
	c := w.container("vivace")
	for _, m := range c.VolumeMounts {
		if m.MountPath == path {
			require.Equal(t, volume, m.Name, "%s: %s", w.name, path)
			require.False(t, m.ReadOnly, "%s: %s must be writable", w.name, path)
			return
		}
	}
	t.Fatalf("%s: nothing mounted at %s", w.name, path)
}

// containerPort finds the named port of a container of the workload.
func containerPort(w *workload, portName string) (corev1.ContainerPort, bool) {
	for _, c := range w.pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == portName {
				return p, true
			}
		}
	}
	return corev1.ContainerPort{}, false
}

func (r *rendered) checkServices(t *testing.T, c chartCase) {
	byTarget := r.vivaceWorkloads(t)
	// Every Service selects pods, and each of its ports is a named port of
	// every pod it selects, with the same protocol.
	for n, s := range r.services {
		require.NotEmpty(t, s.Spec.Selector, "service %s selects nothing", n)
		got := r.selected(labels.SelectorFromSet(s.Spec.Selector))
		require.NotEmpty(t, got, "service %s selects no pods", n)
		for _, p := range s.Spec.Ports {
			require.Equal(t, intstr.String, p.TargetPort.Type, "service %s port %s: target a named port", n, p.Name)
			for _, wn := range got {
				cp, ok := containerPort(r.workloads[wn], p.TargetPort.StrVal)
				require.True(t, ok, "service %s port %s: %s has no port %s", n, p.Name, wn, p.TargetPort.StrVal)
				require.Equal(t, p.Protocol, cp.Protocol, "service %s port %s", n, p.Name)
			}
		}
	}

	// The names and ports proxies, SDKs and Grafana are told to use.
	wantDist := map[string]corev1.ServicePort{"http-metrics": {Port: 3200, Protocol: corev1.ProtocolTCP}}
	for _, rc := range c.receivers {
		wantDist[rc] = receiverPorts[rc]
	}
	requirePorts(t, r.services[name("distributor")], wantDist)
	requirePorts(t, r.services[name("query-frontend")], map[string]corev1.ServicePort{
		"http-metrics": {Port: 3200, Protocol: corev1.ProtocolTCP},
		"grpc":         {Port: 9095, Protocol: corev1.ProtocolTCP},
	})
	dist, qf := byTarget["all"], byTarget["all"]
	if c.distributed {
		dist, qf = byTarget["distributor"], byTarget["query-frontend"]
	}
	require.Equal(t, []string{dist.name}, r.selected(labels.SelectorFromSet(r.services[name("distributor")].Spec.Selector)))
	require.Equal(t, []string{qf.name}, r.selected(labels.SelectorFromSet(r.services[name("query-frontend")].Spec.Selector)))

	gossip := r.services[name("gossip-ring")]
	discovery := r.services[name("query-frontend-discovery")]
	if !c.distributed {
		require.Nil(t, gossip, "monolithic mode does not gossip")
		require.Nil(t, discovery)
		return
	}
	// Memberlist: headless, not-ready pods included (or no ring ever forms),
	// and exactly the roles that gossip.
	require.NotNil(t, gossip, "the gossip-ring Service")
	require.Equal(t, corev1.ClusterIPNone, gossip.Spec.ClusterIP)
	require.True(t, gossip.Spec.PublishNotReadyAddresses, "gossip-ring: not-ready pods must gossip, or no ring ever forms")
	requirePorts(t, gossip, map[string]corev1.ServicePort{"gossip-ring": {Port: 7946, Protocol: corev1.ProtocolTCP}})
	want := []string{name("compactor"), name("distributor"), name("ingester"), name("querier")}
	require.Equal(t, want, r.selected(labels.SelectorFromSet(gossip.Spec.Selector)))
	for _, wn := range want {
		p, ok := containerPort(r.workloads[wn], "http-memberlist")
		require.True(t, ok, wn)
		require.EqualValues(t, 7946, p.ContainerPort, wn)
	}
	// Queriers find every frontend through this one.
	require.NotNil(t, discovery, "the query-frontend-discovery Service")
	require.Equal(t, corev1.ClusterIPNone, discovery.Spec.ClusterIP)
	require.True(t, discovery.Spec.PublishNotReadyAddresses, "query-frontend-discovery: queriers connect before a frontend is ready")
	require.Equal(t, []string{name("query-frontend")}, r.selected(labels.SelectorFromSet(discovery.Spec.Selector)))
}

// requirePorts checks a Service's ports exactly: name → port and protocol.
func requirePorts(t *testing.T, s *corev1.Service, want map[string]corev1.ServicePort) {
	t.Helper()
	require.NotNil(t, s)
	got := map[string]corev1.ServicePort{}
	for _, p := range s.Spec.Ports {
		got[p.Name] = corev1.ServicePort{Port: p.Port, Protocol: p.Protocol}
	}
	require.Equal(t, want, got, "service %s ports", s.Name)
}

// checkPods checks the security context of every container, and the probes
// and mounts of Vivace's.
func (r *rendered) checkPods(t *testing.T) {
	for n, w := range r.workloads {
		spec := w.pod.Spec
		psc := spec.SecurityContext
		require.NotNil(t, psc, "%s: pod securityContext", n)
		require.NotNil(t, psc.RunAsNonRoot, n)
		require.True(t, *psc.RunAsNonRoot, "%s: runAsNonRoot", n)
		require.NotNil(t, psc.RunAsUser, n)
		require.NotZero(t, *psc.RunAsUser, "%s: runAsUser", n)
		// Nothing here calls the Kubernetes API: no token in the pod.
		automount := spec.AutomountServiceAccountToken
		if automount == nil {
			sa := r.serviceAccounts[spec.ServiceAccountName]
			require.NotNil(t, sa, "%s: service account %q", n, spec.ServiceAccountName)
			automount = sa.AutomountServiceAccountToken
		}
		require.True(t, automount != nil && !*automount, "%s: automountServiceAccountToken", n)
		// A StatefulSet's governing Service is a rendered headless one.
		if w.kind == "StatefulSet" {
			s := r.services[w.serviceName]
			require.NotNil(t, s, "%s: serviceName %q", n, w.serviceName)
			require.Equal(t, corev1.ClusterIPNone, s.Spec.ClusterIP, "%s: serviceName %q", n, w.serviceName)
			require.Contains(t, r.selected(labels.SelectorFromSet(s.Spec.Selector)), n)
		}
		for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
			sc := c.SecurityContext
			require.NotNil(t, sc, "%s/%s: securityContext", n, c.Name)
			require.NotNil(t, sc.ReadOnlyRootFilesystem, "%s/%s", n, c.Name)
			require.True(t, *sc.ReadOnlyRootFilesystem, "%s/%s: readOnlyRootFilesystem", n, c.Name)
			require.NotNil(t, sc.AllowPrivilegeEscalation, "%s/%s", n, c.Name)
			require.False(t, *sc.AllowPrivilegeEscalation, "%s/%s: allowPrivilegeEscalation", n, c.Name)
			require.NotNil(t, sc.Capabilities, "%s/%s", n, c.Name)
			require.Contains(t, sc.Capabilities.Drop, corev1.Capability("ALL"), "%s/%s: drop all capabilities", n, c.Name)
			require.True(t, sc.RunAsNonRoot == nil || *sc.RunAsNonRoot, "%s/%s: runAsNonRoot", n, c.Name)
			// Every volume mounted exists.
			for _, m := range c.VolumeMounts {
				found := slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name }) ||
					slices.ContainsFunc(w.claims, func(p corev1.PersistentVolumeClaim) bool { return p.Name == m.Name })
				require.True(t, found, "%s/%s mounts %s, which is no volume", n, c.Name, m.Name)
			}
		}
		c := w.container("vivace")
		if c == nil {
			continue
		}
		requireProbe(t, w, c.ReadinessProbe, "readiness")
		if c.LivenessProbe != nil {
			requireProbe(t, w, c.LivenessProbe, "liveness")
		}
		// Written to: only the mounted volumes, the root filesystem is read-only.
		requireMount(t, w, "/var/vivace", "data")
		requireMount(t, w, "/tmp", "tmp")
		if ann := w.pod.Annotations; ann["prometheus.io/scrape"] == "true" {
			require.Equal(t, "3200", ann["prometheus.io/port"], n)
			require.Equal(t, "/metrics", ann["prometheus.io/path"], n)
		}
	}
}

func requireProbe(t *testing.T, w *workload, p *corev1.Probe, what string) {
	t.Helper()
	require.NotNil(t, p, "%s: %s probe", w.name, what)
	require.NotNil(t, p.HTTPGet, "%s: %s probe is not HTTP", w.name, what)
	require.Equal(t, "/ready", p.HTTPGet.Path, "%s: %s probe", w.name, what)
	port, ok := containerPort(w, p.HTTPGet.Port.StrVal)
	require.True(t, ok, "%s: %s probe port %s", w.name, what, p.HTTPGet.Port.String())
	require.EqualValues(t, 3200, port.ContainerPort, "%s: %s probe port", w.name, what)
}

func (r *rendered) checkPDBs(t *testing.T, c chartCase) {
	if !c.distributed {
		require.Empty(t, r.pdbs, "one monolithic pod has nothing to budget")
		return
	}
	require.Len(t, r.pdbs, len(distributedRoles))
	for _, role := range distributedRoles {
		p := r.pdbs[name(role)]
		require.NotNil(t, p, "PodDisruptionBudget for %s", role)
		require.NotNil(t, p.Spec.MaxUnavailable, role)
		require.Equal(t, intstr.FromInt32(1), *p.Spec.MaxUnavailable, role)
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		require.NoError(t, err)
		require.Equal(t, []string{name(role)}, r.selected(sel), "the budget of %s covers exactly its pods", role)
	}
}

// checkConfig loads the rendered config with app.Load for every Vivace
// workload, with that container's args and environment, as the pod would.
func (r *rendered) checkConfig(t *testing.T, c chartCase) {
	cm := r.configMaps[name("config")]
	require.NotNil(t, cm, "the config ConfigMap")
	dir := t.TempDir()
	for target, w := range r.vivaceWorkloads(t) {
		t.Run(target, func(t *testing.T) {
			ctr := w.container("vivace")
			args, text := r.configArgs(t, w, ctr, dir)
			podName := w.name + "-0"
			env := r.containerEnv(t, ctr, podName, c)
			// Every ${VAR} in the config is in the pod's environment: with
			// -config.expand-env an unset one would silently be empty.
			for _, m := range regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:[^}]*)?\}`).FindAllStringSubmatch(text, -1) {
				_, ok := env[m[1]]
				require.True(t, ok || m[2] != "", "the config reads ${%s}, which %s does not set", m[1], w.name)
			}
			for k, v := range env {
				t.Setenv(k, v)
			}
			cfg, printDefaults, err := app.Load(args)
			require.NoError(t, err, "vivace %s with the rendered config", strings.Join(args, " "))
			require.False(t, printDefaults)
			require.Equal(t, target, cfg.Target)
			r.checkLoaded(t, c, w, cfg, env, podName)
			r.checkOverrides(t, c, w, ctr, cfg)
		})
	}
	// A config change rolls the pods; the runtime overrides file, reloaded
	// in place, is left out (TestPerTenantDoesNotRoll).
	sum := sha256.Sum256([]byte(strings.TrimSuffix(cm.Data["vivace.yaml"], "\n")))
	for _, w := range r.vivaceWorkloads(t) {
		require.Equal(t, hex.EncodeToString(sum[:]), w.pod.Annotations["checksum/config"], "%s: checksum/config", w.name)
	}
}

// configArgs returns the container's args with -config.file pointing at a
// copy of the mounted ConfigMap's file, and that file's text.
func (r *rendered) configArgs(t *testing.T, w *workload, ctr *corev1.Container, dir string) ([]string, string) {
	t.Helper()
	require.Empty(t, ctr.Command, "%s: the image's entrypoint runs vivace", w.name)
	require.Contains(t, ctr.Args, "-config.expand-env=true", w.name)
	args := slices.Clone(ctr.Args)
	var text string
	found := false
	for i, a := range args {
		path, ok := strings.CutPrefix(a, "-config.file=")
		if !ok {
			continue
		}
		found = true
		text = r.mountedFile(t, w, ctr, path)
		local := filepath.Join(dir, filepath.Base(path))
		require.NoError(t, os.WriteFile(local, []byte(text), 0o644))
		args[i] = "-config.file=" + local
	}
	require.True(t, found, "%s: no -config.file", w.name)
	return args, text
}

// mountedFile resolves path in the container to a key of a ConfigMap the
// chart renders, mounted read-only at the path's directory, and returns the
// key's text. The mount is the whole ConfigMap (no subPath), so kubelet
// updates the file in place when the ConfigMap changes.
func (r *rendered) mountedFile(t *testing.T, w *workload, ctr *corev1.Container, path string) string {
	t.Helper()
	require.True(t, filepath.IsAbs(path), "%s: %q is not an absolute path", w.name, path)
	// The file is what the innermost mount covering it shows.
	var mount *corev1.VolumeMount
	for i, m := range ctr.VolumeMounts {
		mp := filepath.Clean(m.MountPath)
		if (path == mp || strings.HasPrefix(path, mp+"/")) && (mount == nil || len(mp) > len(filepath.Clean(mount.MountPath))) {
			mount = &ctr.VolumeMounts[i]
		}
	}
	require.NotNil(t, mount, "%s: nothing mounted at %s", w.name, filepath.Dir(path))
	require.Equal(t, filepath.Dir(path), filepath.Clean(mount.MountPath), "%s: %s must be mounted as a directory: kubelet never updates a subPath mount", w.name, path)
	require.Empty(t, mount.SubPath, "%s: the mount at %s: kubelet never updates a subPath mount", w.name, mount.MountPath)
	require.True(t, mount.ReadOnly, "%s: the mount at %s", w.name, mount.MountPath)
	vol := mount.Name
	var cmName string
	for _, v := range w.pod.Spec.Volumes {
		if v.Name == vol {
			require.NotNil(t, v.ConfigMap, "%s: volume %s is not a ConfigMap", w.name, vol)
			require.Empty(t, v.ConfigMap.Items, "%s: volume %s mounts the whole ConfigMap", w.name, vol)
			cmName = v.ConfigMap.Name
		}
	}
	cm := r.configMaps[cmName]
	require.NotNil(t, cm, "%s mounts ConfigMap %q, which the chart does not render", w.name, cmName)
	text, ok := cm.Data[filepath.Base(path)]
	require.True(t, ok, "ConfigMap %s has no key %s", cmName, filepath.Base(path))
	return text
}

// containerEnv is the environment the container gets: literal values, the
// pod's name, and Secret keys from the Secret the chart renders, or a
// stand-in for a Secret it does not.
func (r *rendered) containerEnv(t *testing.T, ctr *corev1.Container, podName string, c chartCase) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, e := range ctr.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil:
			require.Equal(t, "metadata.name", e.ValueFrom.FieldRef.FieldPath, e.Name)
			env[e.Name] = podName
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			s, ok := r.secrets[ref.Name]
			if !ok {
				require.Equal(t, "existing", c.s3Keys, "%s reads Secret %s, which the chart does not render", e.Name, ref.Name)
				env[e.Name] = existingSecretValue
				continue
			}
			v, ok := s.Data[ref.Key]
			require.True(t, ok, "Secret %s has no key %s", ref.Name, ref.Key)
			env[e.Name] = string(v)
		default:
			t.Fatalf("env %s: a source the test does not know", e.Name)
		}
	}
	return env
}

// checkLoaded checks the loaded config of one workload against the chart's
// Services and the case.
func (r *rendered) checkLoaded(t *testing.T, c chartCase, w *workload, cfg *app.Config, env map[string]string, podName string) {
	require.Equal(t, 3200, cfg.Server.HTTPListenPort)
	require.Equal(t, 9095, cfg.Server.GRPCListenPort)
	p, _ := containerPort(w, "grpc")
	require.EqualValues(t, cfg.Server.GRPCListenPort, p.ContainerPort)
	require.Equal(t, podName, cfg.Ingester.Lifecycler.ID, "the ingester's ring ID is its pod's name")

	if c.distributed {
		require.Equal(t, 3, cfg.Ingester.Lifecycler.RingConfig.ReplicationFactor)
		require.Equal(t, 15*time.Second, cfg.Ingester.Lifecycler.MinReadyDuration)
		require.Equal(t, 7946, cfg.Memberlist.TCPTransport.BindPort)
		require.Len(t, cfg.Memberlist.JoinMembers, 1)
		requireService(t, r, strings.TrimPrefix(cfg.Memberlist.JoinMembers[0], "dns+"), name("gossip-ring"))
		requireService(t, r, cfg.Querier.FrontendWorker.FrontendAddress, name("query-frontend-discovery"))
	} else {
		require.Equal(t, 1, cfg.Ingester.Lifecycler.RingConfig.ReplicationFactor)
		require.Empty(t, cfg.Memberlist.JoinMembers, "monolithic keeps its rings in memory")
		require.Empty(t, cfg.Querier.FrontendWorker.FrontendAddress)
	}

	// The receivers listen on the container's ports, and only those enabled.
	if cfg.Target == "distributor" || cfg.Target == "all" {
		for rc, ep := range receiverEndpoints(cfg) {
			p, ok := containerPort(w, rc)
			if !slices.Contains(c.receivers, rc) {
				require.Empty(t, ep, "receiver %s is off", rc)
				require.False(t, ok, "receiver %s is off: no container port", rc)
				continue
			}
			require.True(t, ok, "receiver %s: container port", rc)
			_, port, err := net.SplitHostPort(ep)
			require.NoError(t, err, rc)
			require.Equal(t, strconv.Itoa(int(p.ContainerPort)), port, "receiver %s", rc)
			require.Equal(t, receiverPorts[rc].Protocol, p.Protocol, rc)
		}
		require.Equal(t, c.everything, cfg.Distributor.LogReceivedSpans.Enabled)
	}
	if c.everything {
		require.Equal(t, 32, cfg.Distributor.Receivers.OTLP.Protocols.GRPC.MaxRecvMsgSizeMiB, "receiverConfig")
		require.Equal(t, 10_000_000, cfg.Overrides.Defaults.Global.MaxBytesPerTrace, "structuredConfig")
	}
	require.Equal(t, c.retention, cfg.Compactor.Compaction.BlockRetention)

	// Storage: where the pod can write, or the bucket with the pod's keys.
	st := cfg.Storage.Trace
	require.Equal(t, c.backend, st.Backend)
	require.True(t, strings.HasPrefix(st.WAL.Path, "/var/vivace/"), "the WAL is on the data volume: %s", st.WAL.Path)
	if c.backend == "local" {
		require.True(t, strings.HasPrefix(st.Local.Path, "/var/vivace/"), "blocks are on the data volume: %s", st.Local.Path)
		return
	}
	switch c.s3Keys {
	case "":
		require.Empty(t, st.S3.AccessKey, "credentials come from the IAM role")
		require.Empty(t, st.S3.SecretKey.String())
		require.NotContains(t, env, "S3_ACCESS_KEY")
	case "existing":
		require.Equal(t, existingSecretValue, st.S3.AccessKey)
		require.Equal(t, existingSecretValue, st.S3.SecretKey.String())
	default:
		require.Equal(t, env["S3_ACCESS_KEY"], st.S3.AccessKey)
		require.Equal(t, env["S3_SECRET_KEY"], st.S3.SecretKey.String())
		require.NotEmpty(t, st.S3.AccessKey)
	}
	if c.minio {
		require.True(t, st.S3.Insecure)
		requireService(t, r, st.S3.Endpoint, name("minio"))
		m := r.workloads[name("minio")]
		require.Contains(t, m.pod.Spec.InitContainers[0].Command, "/data/"+st.S3.Bucket, "MinIO makes the bucket Vivace uses")
		require.Equal(t, "vivace", env["S3_ACCESS_KEY"], "MinIO's root user")
	}
}

// checkOverrides checks the limits: overrides.defaults in the loaded config,
// and the runtime overrides file the config names, parsed as Vivace parses
// it at every reload.
func (r *rendered) checkOverrides(t *testing.T, c chartCase, w *workload, ctr *corev1.Container, cfg *app.Config) {
	path := cfg.Overrides.PerTenantOverrideConfig
	require.NotEmpty(t, path, "overrides.per_tenant_override_config")
	tenants, err := overrides.ParseFile([]byte(r.mountedFile(t, w, ctr, path)), cfg.Overrides.Defaults)
	require.NoError(t, err, "the runtime overrides file %s", path)
	if !c.everything {
		require.Empty(t, tenants)
		return
	}
	d := cfg.Overrides.Defaults
	require.Equal(t, 30_000_000, d.Ingestion.RateLimitBytes, "overrides.defaults")
	require.Equal(t, 40_000_000, d.Ingestion.BurstSizeBytes, "overrides.defaults")
	require.Equal(t, 10_000_000, d.Global.MaxBytesPerTrace, "structuredConfig wins over overrides.defaults")
	// Each entry is applied over the defaults.
	teamA := d
	teamA.Ingestion.RateLimitBytes = 50_000_000
	teamA.Ingestion.BurstSizeBytes = 60_000_000
	teamA.Compaction.BlockRetention = model.Duration(2160 * time.Hour)
	wildcard := d
	wildcard.Read.MaxSearchDuration = model.Duration(24 * time.Hour)
	require.Equal(t, map[string]*overrides.Limits{"team-a": &teamA, overrides.Wildcard: &wildcard}, tenants)
}

// requireService checks that hostport names a rendered Service by its
// in-cluster DNS name, on one of its ports.
func requireService(t *testing.T, r *rendered, hostport, service string) {
	t.Helper()
	host, port, err := net.SplitHostPort(hostport)
	require.NoError(t, err, hostport)
	require.Equal(t, service+"."+namespace+".svc."+domain, host)
	s := r.services[service]
	require.NotNil(t, s, "service %s", service)
	require.True(t, slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return strconv.Itoa(int(p.Port)) == port }),
		"service %s has no port %s", service, port)
}

func (r *rendered) checkServiceMonitor(t *testing.T, c chartCase) {
	if !c.serviceMonitor {
		require.Empty(t, r.serviceMonitors)
		return
	}
	sm := r.serviceMonitors[release]
	require.NotNil(t, sm)
	require.Equal(t, []string{namespace}, sm.Spec.NamespaceSelector.MatchNames)
	require.Len(t, sm.Spec.Endpoints, 1)
	require.Equal(t, "http-metrics", sm.Spec.Endpoints[0].Port)
	require.Equal(t, "/metrics", sm.Spec.Endpoints[0].Path)
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	require.NoError(t, err)
	// Every Vivace pod is scraped through exactly one Service.
	scraped := map[string]int{}
	for _, s := range r.services {
		if !sel.Matches(labels.Set(s.Labels)) {
			continue
		}
		require.True(t, slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == "http-metrics" }), s.Name)
		for _, wn := range r.selected(labels.SelectorFromSet(s.Spec.Selector)) {
			scraped[wn]++
		}
	}
	for _, w := range r.vivaceWorkloads(t) {
		require.Equal(t, 1, scraped[w.name], "%s is scraped through one Service", w.name)
	}
}

func (r *rendered) checkDatasource(t *testing.T, c chartCase) {
	cm := r.configMaps[name("grafana-datasource")]
	if !c.datasource {
		require.Nil(t, cm)
		return
	}
	require.NotNil(t, cm)
	require.Equal(t, "1", cm.Labels["grafana_datasource"], "the Grafana chart's sidecar finds it by this label")
	var prov struct {
		APIVersion  int `json:"apiVersion"`
		Datasources []struct {
			Name      string `json:"name"`
			Type      string `json:"type"`
			UID       string `json:"uid"`
			Access    string `json:"access"`
			URL       string `json:"url"`
			IsDefault bool   `json:"isDefault"`
			JSONData  struct {
				StreamingEnabled struct {
					Search  bool `json:"search"`
					Metrics bool `json:"metrics"`
				} `json:"streamingEnabled"`
			} `json:"jsonData"`
		} `json:"datasources"`
	}
	require.NoError(t, unmarshalStrict(cm.Data["vivace-datasource.yaml"], &prov))
	require.Equal(t, 1, prov.APIVersion)
	require.Len(t, prov.Datasources, 1)
	ds := prov.Datasources[0]
	require.Equal(t, "tempo", ds.Type)
	require.Equal(t, "proxy", ds.Access)
	url, ok := strings.CutPrefix(ds.URL, "http://")
	require.True(t, ok, ds.URL)
	requireService(t, r, url, name("query-frontend"))
	require.True(t, strings.HasSuffix(url, ":3200"), url)
	// The query-frontend serves Tempo's StreamingQuerier over h2c on its
	// HTTP port, the one the URL names; it has no TraceQL metrics.
	require.True(t, ds.JSONData.StreamingEnabled.Search, "streamingEnabled.search")
	require.False(t, ds.JSONData.StreamingEnabled.Metrics, "streamingEnabled.metrics")
}
