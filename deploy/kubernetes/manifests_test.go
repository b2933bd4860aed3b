// Package kubernetes holds weft's DaemonSet manifests (kustomize); its test
// parses every file strictly into the API types and checks what weft
// depends on. e2e/kube_test.go applies them to a real API server.
package kubernetes

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/weftrace/weft/k8smeta"
)

// kustomization is the part of a kustomization.yaml the test reads.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace,omitempty"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewTag  string `json:"newTag"`
		NewName string `json:"newName,omitempty"`
	} `json:"images,omitempty"`
	Patches []struct {
		Path string `json:"path"`
	} `json:"patches,omitempty"`
}

func readStrict(t *testing.T, path string, into any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestKustomizations: every kustomization lists files that exist, the base
// lists every manifest in its directory, and the image is weft's.
func TestKustomizations(t *testing.T) {
	for _, dir := range []string{".", "base", "privileged"} {
		var k kustomization
		readStrict(t, filepath.Join(dir, "kustomization.yaml"), &k)
		if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
			t.Errorf("%s: %s %s", dir, k.APIVersion, k.Kind)
		}
		for _, r := range append(slices.Clone(k.Resources), pathsOf(k)...) {
			if _, err := os.Stat(filepath.Join(dir, r)); err != nil {
				t.Errorf("%s: %v", dir, err)
			}
		}
		if dir != "base" && (len(k.Images) != 1 || k.Images[0].Name != "ghcr.io/weftrace/weft" || k.Images[0].NewTag == "") {
			t.Errorf("%s: images %+v", dir, k.Images)
		}
	}
	var base kustomization
	readStrict(t, "base/kustomization.yaml", &base)
	files, _ := filepath.Glob("base/*.yaml")
	var manifests []string
	for _, f := range files {
		if filepath.Base(f) != "kustomization.yaml" {
			manifests = append(manifests, filepath.Base(f))
		}
	}
	sort.Strings(manifests)
	listed := slices.Sorted(slices.Values(base.Resources))
	if !slices.Equal(manifests, listed) {
		t.Errorf("base lists %v, directory has %v", listed, manifests)
	}
	if base.Namespace != "weft" {
		t.Errorf("base namespace %q", base.Namespace)
	}
}

func pathsOf(k kustomization) []string {
	var out []string
	for _, p := range k.Patches {
		out = append(out, p.Path)
	}
	return out
}

// TestClusterRoleIsWhatK8smetaUses: the ClusterRole grants exactly the
// (group, resource, verb) triples k8smeta's informers use, recorded from
// a fake API server while they list and watch.
func TestClusterRoleIsWhatK8smetaUses(t *testing.T) {
	var role rbacv1.ClusterRole
	readStrict(t, "base/clusterrole.yaml", &role)
	granted := map[string]bool{}
	for _, r := range role.Rules {
		if len(r.ResourceNames) > 0 || len(r.NonResourceURLs) > 0 {
			t.Errorf("rule %+v: resource names or URLs", r)
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					granted[g+"/"+res+":"+v] = true
				}
			}
		}
	}

	cs := fake.NewClientset()
	var mu sync.Mutex
	used := map[string]bool{}
	cs.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		used[a.GetResource().Group+"/"+a.GetResource().Resource+":"+a.GetVerb()] = true
		mu.Unlock()
		return false, nil, nil
	})
	cs.PrependWatchReactor("*", func(a k8stesting.Action) (bool, watch.Interface, error) {
		mu.Lock()
		used[a.GetResource().Group+"/"+a.GetResource().Resource+":"+a.GetVerb()] = true
		mu.Unlock()
		return false, nil, nil
	})
	kube := k8smeta.NewKube(cs, k8smeta.KubeConfig{NodeName: "node-1"})
	kube.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	synced := kube.WaitForSync(ctx)
	cancel()
	// Let every informer's watch start.
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(used)
		mu.Unlock()
		if n >= len(granted) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	kube.Stop()
	if !synced {
		t.Fatal("informers did not sync")
	}
	mu.Lock()
	defer mu.Unlock()
	if !mapsEqual(used, granted) {
		t.Errorf("ClusterRole grants %v\nk8smeta uses     %v", keys(granted), keys(used))
	}
}

func mapsEqual(a, b map[string]bool) bool {
	return slices.Equal(keys(a), keys(b))
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestDaemonSet checks what weft needs of its pod and what the README
// promises about it.
func TestDaemonSet(t *testing.T) {
	var ns corev1.Namespace
	readStrict(t, "base/namespace.yaml", &ns)
	var sa corev1.ServiceAccount
	readStrict(t, "base/serviceaccount.yaml", &sa)
	var binding rbacv1.ClusterRoleBinding
	readStrict(t, "base/clusterrolebinding.yaml", &binding)
	var ds appsv1.DaemonSet
	readStrict(t, "base/daemonset.yaml", &ds)

	for _, k := range []struct{ got, want string }{
		{ns.Kind, "Namespace"}, {sa.Kind, "ServiceAccount"}, {binding.Kind, "ClusterRoleBinding"}, {ds.Kind, "DaemonSet"},
		{ns.Labels["pod-security.kubernetes.io/enforce"], "privileged"},
		{binding.RoleRef.Kind + "/" + binding.RoleRef.Name, "ClusterRole/weft"},
		{ds.Namespace, ns.Name}, {sa.Namespace, ns.Name},
		{ds.Spec.Template.Spec.ServiceAccountName, sa.Name},
	} {
		if k.got != k.want {
			t.Errorf("got %q, want %q", k.got, k.want)
		}
	}
	if len(binding.Subjects) != 1 || binding.Subjects[0].Kind != "ServiceAccount" || binding.Subjects[0].Name != sa.Name || binding.Subjects[0].Namespace != ns.Name {
		t.Errorf("binding subjects %+v", binding.Subjects)
	}
	if !mapsEqualStr(ds.Spec.Selector.MatchLabels, ds.Spec.Template.Labels) {
		t.Errorf("selector %v does not match the template's labels %v", ds.Spec.Selector.MatchLabels, ds.Spec.Template.Labels)
	}

	pod := ds.Spec.Template.Spec
	if !pod.HostPID {
		t.Error("hostPID is off: weft's pids are the host's")
	}
	if pod.HostNetwork {
		t.Error("hostNetwork is on: weft does not need it")
	}
	if len(pod.Tolerations) != 1 || pod.Tolerations[0].Operator != corev1.TolerationOpExists || pod.Tolerations[0].Key != "" || pod.Tolerations[0].Effect != "" {
		t.Errorf("tolerations %+v, want one that tolerates every taint", pod.Tolerations)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	if !strings.HasPrefix(c.Image, "ghcr.io/weftrace/weft") {
		t.Errorf("image %q", c.Image)
	}
	if !slices.Contains(c.Args, "--http-addr=0.0.0.0:9464") {
		t.Errorf("args %q: the probes need weft's HTTP server on the pod's address", c.Args)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if e := env["NODE_NAME"]; e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
		t.Errorf("NODE_NAME %+v, want the downward API's spec.nodeName", e)
	}
	if e := env["OTEL_EXPORTER_OTLP_ENDPOINT"]; !strings.HasPrefix(e.Value, "http://") {
		t.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT %+v", e)
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != 9464 {
		t.Errorf("ports %+v", c.Ports)
	}
	for name, p := range map[string]*corev1.Probe{"/readyz": c.ReadinessProbe, "/healthz": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != name || p.HTTPGet.Port.String() != c.Ports[0].Name {
			t.Errorf("probe %s: %+v", name, p)
		}
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			t.Errorf("no %s request", r)
		}
		if _, ok := c.Resources.Limits[r]; !ok {
			t.Errorf("no %s limit", r)
		}
	}
	sc := c.SecurityContext
	if sc == nil || sc.Capabilities == nil {
		t.Fatal("no security context")
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("privileged in the base: that is the privileged variant's")
	}
	var added []string
	for _, cp := range sc.Capabilities.Add {
		added = append(added, string(cp))
	}
	sort.Strings(added)
	if want := []string{"BPF", "DAC_READ_SEARCH", "PERFMON", "SYS_PTRACE", "SYS_RESOURCE"}; !slices.Equal(added, want) {
		t.Errorf("capabilities %v, want %v", added, want)
	}
	if len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		t.Errorf("drop %v, want ALL", sc.Capabilities.Drop)
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	mounted := map[string]bool{}
	for _, m := range c.VolumeMounts {
		v, ok := volumes[m.Name]
		switch {
		case !ok:
			t.Errorf("mount %s: no volume", m.Name)
		case v.HostPath == nil:
			t.Errorf("volume %s is not a host path", m.Name)
		case !m.ReadOnly:
			t.Errorf("host path %s is mounted read-write", v.HostPath.Path)
		default:
			mounted[v.HostPath.Path] = true
		}
	}
	for _, p := range []string{"/sys/kernel/tracing", "/sys/kernel/btf"} {
		if !mounted[p] {
			t.Errorf("%s is not mounted", p)
		}
	}

	var patch appsv1.DaemonSet
	readStrict(t, "privileged/privileged.yaml", &patch)
	if patch.Name != ds.Name || patch.Namespace != ds.Namespace || len(patch.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("privileged patch does not name the DaemonSet's container: %+v", patch.ObjectMeta)
	}
	psc := patch.Spec.Template.Spec.Containers[0].SecurityContext
	if patch.Spec.Template.Spec.Containers[0].Name != c.Name || psc == nil || psc.Privileged == nil || !*psc.Privileged ||
		psc.AllowPrivilegeEscalation == nil || !*psc.AllowPrivilegeEscalation {
		t.Errorf("privileged patch %+v", psc)
	}
}

func mapsEqualStr(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
